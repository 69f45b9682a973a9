"""A SciFact store built by this tree and by another git revision (default ``main``), side by side in one run.

    .venv/bin/python benchmarks/embed_cache.py          # once: the corpus embeddings
    .venv/bin/python benchmarks/format_before_after.py [--before main] [--out benchmarks/results/format_before_after.json]

Each side runs ``memory.eval.evaluate`` (``binary+int8``, store defaults) on scifact-train with
a real store file (``store_path``), the cached corpus embeddings
(``$HASHMEM_BENCH_CACHE/scifact-corpus.npy``) and the queries embedded by the store's own
embedder, in its own process: the "before" side imports the other revision's code, exported
with ``git archive`` into a temporary directory laid out as the ``hashmem`` package. Reported
per side: the store's format version, nDCG@10 and recall@10, the file's bytes per passage by
part (``Memory.stats().file_parts``), a digest of every query's ranked ids, so equal
digests mean identical rankings, and then, on the built store, the median milliseconds of
30 one-passage adds (given embeddings, two new words each: the lexicon grows every time;
the first add is also reported, it reads the lexicon) and of 200 searches. The two sides
run one after the other on the same (shared, busy) machine: the timing ratios are rough.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "scifact-train"
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))
SUBPACKAGES = ("memory", "decoders", "cli", "server", "integrations")
ADDS, SEARCHES = 30, 200


def child(out: Path) -> None:
    """Build and evaluate one store with whichever ``hashmem`` this process imports."""
    import numpy as np

    import hashmem.memory as hm
    from hashmem.evaluation import retrieval as ev
    from hashmem.memory import Memory
    from hashmem.memory.config import FORMAT_VERSION

    docs = np.load(CACHE / "scifact-corpus.npy")
    with tempfile.TemporaryDirectory(prefix="hashmem-fmt-") as tmp:
        path = Path(tmp) / "scifact.db"
        r = ev.evaluate(DATA, store_path=path, corpus_embeddings=docs, methods=("binary+int8",),
                        return_runs=True, progress=False)
        with Memory(path, create=False) as mem:
            st = mem.stats()
            add_ms, search_ms = [], []  # one-passage adds (new words each) and searches on the built store
            rng = np.random.default_rng(0)
            for i in range(ADDS):
                t = time.perf_counter()
                mem.add([f"Note {i}: zqx{i}ab and wyv{i}cd were measured again."], embeddings=docs[i : i + 1])
                add_ms.append(1000 * (time.perf_counter() - t))
            for q in docs[rng.choice(len(docs), SEARCHES, replace=False)]:
                t = time.perf_counter()
                mem.search_embeddings(q[None, :], 10)
                search_ms.append(1000 * (time.perf_counter() - t))
    run = r["runs"]["binary+int8"]
    digest = hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()[:16]
    m = r["methods"]["binary+int8"]
    out.write_text(json.dumps({
        "code": str(Path(hm.__file__).parent),
        "format_version": FORMAT_VERSION,
        "ndcg@10": m["ndcg@10"],
        "recall@10": m["recall@10"],
        "rankings_digest": digest,
        "passages": st.records,
        "file_bytes": st.file_bytes,
        "bytes_per_passage": round(st.file_bytes / st.records, 1),
        "file_parts_per_passage": {k: round(v / st.records, 1) for k, v in (st.file_parts or {}).items()},
        "parts_sum_over_file": round(sum(st.file_parts.values()) / st.file_bytes, 4),
        "one_passage_add_ms_median": round(float(np.median(add_ms)), 2),
        "one_passage_add_ms_first": round(add_ms[0], 2),
        "search_ms_median": round(float(np.median(search_ms)), 3),
    }))


def export(rev: str, dest: Path) -> Path:
    """``git archive`` of ``rev`` laid out as an importable ``hashmem`` package under ``dest``; returns its parent."""
    src = dest / "src"
    src.mkdir(parents=True)
    tar = dest / "rev.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(tar), rev], check=True)
    with tarfile.open(tar) as t:
        t.extractall(src, filter="data")
    pkg = dest / "pkg" / "hashmem"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text((src / "hashmem" / "__init__.py").read_text())
    for name in SUBPACKAGES:
        if (src / name).is_dir():
            (pkg / name).symlink_to(src / name, target_is_directory=True)
    return dest / "pkg"


def side(label: str, pythonpath: Path | None, tmp: Path) -> dict:
    out = tmp / f"{label}.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    subprocess.run([sys.executable, __file__, "--child", str(out)], check=True, env=env, cwd=tmp)
    result = json.loads(out.read_text())
    expected = str(pythonpath) if pythonpath is not None else str(ROOT)
    if not result["code"].startswith(expected):
        raise SystemExit(f"{label}: imported hashmem from {result['code']}, not from {expected}")
    print(label, json.dumps(result), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="main", help="git revision of the 'before' side")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before], check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="hashmem-before-") as tmp:
        tmp = Path(tmp)
        before = side(f"before ({args.before} {rev})", export(args.before, tmp / "before"), tmp)
        after = side("after (this tree)", None, tmp)
    result = {"dataset": "scifact-train", "before_revision": f"{args.before} {rev}", "before": before, "after": after,
              "identical_rankings": before["rankings_digest"] == after["rankings_digest"],
              "ndcg@10_change": round(after["ndcg@10"] - before["ndcg@10"], 6),
              "bytes_per_passage_change": round(after["bytes_per_passage"] - before["bytes_per_passage"], 1),
              "one_passage_add_median_after_over_before": round(after["one_passage_add_ms_median"]
                                                                / before["one_passage_add_ms_median"], 2),
              "search_median_after_over_before": round(after["search_ms_median"] / before["search_ms_median"], 2)}
    print(json.dumps({k: v for k, v in result.items() if k not in ("before", "after")}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
