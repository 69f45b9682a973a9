"""What hybrid adds to a search at 5k passages, the code of another commit against this tree's, in one run.

Two worker processes each build a ``text`` store of scifact-train (cached embeddings,
``eval_grid.cached_embeddings``) with their own code: ``before`` imports ``hashmem`` from
``git archive --rev`` unpacked in a temporary directory (a ``hashmem`` package whose
subpackages link into it), ``after`` from this tree. Then, for the first ``--timed`` queries,
``--rounds`` times, the driver asks each worker in turn (before, after) for one
binary+int8 and one hybrid search of the same query (weight 0.4) and collects each search's
wall and CPU milliseconds (``time.process_time``: the machine is shared, the wall time
mostly measures waiting). Reported: p50 of each, and of hybrid minus binary+int8 per query.

    OPENBLAS_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hybrid_before_after.py --rev c251291 \\
        --out benchmarks/results/hybrid_before_after.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("memory", "decoders", "cli", "server", "integrations", "evaluation")


def worker() -> None:
    """Build the store, then answer ``<query> <mode>`` lines with ``<wall ms> <cpu ms>``."""
    import hashmem.memory  # first: eval_grid puts this tree's root on sys.path

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from eval_grid import DATA, cached_embeddings

    from hashmem.evaluation import retrieval as ev
    from hashmem.memory import Memory
    from hashmem.memory.embedding.embedder import DEFAULT_MODEL

    data = ev.load_beir(DATA / "scifact-train")
    docs, queries = cached_embeddings(data, DEFAULT_MODEL)
    with tempfile.TemporaryDirectory(prefix="hashmem-ba-") as tmp, Memory(Path(tmp) / "s.db", fidelity="text") as mem:
        ev.ingest(mem, data, docs, progress=False)
        print("ready", hashmem.memory.__file__, flush=True)
        for line in sys.stdin:
            qi, mode = int(line.split()[0]), line.split()[1]
            w, c = time.perf_counter(), time.process_time()
            mem.search_embeddings(queries[qi : qi + 1], 10, mode=mode, query_texts=[data.query_texts[qi]],
                                  lexical_weight=0.4 if mode == "hybrid" else None)
            print(1000 * (time.perf_counter() - w), 1000 * (time.process_time() - c), flush=True)


def package_of(rev: str, tmp: Path) -> Path:
    """A directory holding a ``hashmem`` package of ``rev``'s code."""
    src = tmp / "src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pkg = tmp / "pkg" / "hashmem"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_bytes((src / "hashmem" / "__init__.py").read_bytes())
    for name in PACKAGES:
        (pkg / name).symlink_to(src / name, target_is_directory=True)
    return tmp / "pkg"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", default="c251291", help="the commit whose code is 'before'")
    p.add_argument("--timed", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hybrid_before_after.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker()
        return
    with tempfile.TemporaryDirectory(prefix="hashmem-ba-code-") as tmp:
        # -S: no site hooks, so this tree's editable install does not answer for ``hashmem``; its packages by path
        site = next(p for p in sys.path if p.endswith("site-packages"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_of(args.rev, Path(tmp))), site])}
        procs = {side: subprocess.Popen([sys.executable, *flags, __file__, "--worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=e)
                 for side, flags, e in (("before", ["-S"], env), ("after", [], {**os.environ}))}
        code = {side: proc.stdout.readline().split()[1] for side, proc in procs.items()}  # "ready <path>"
        t: dict = {(side, mode): [] for side in procs for mode in ("binary+int8", "hybrid")}
        for _ in range(args.rounds):
            for qi in range(args.timed):
                for side, proc in procs.items():
                    for mode in ("binary+int8", "hybrid"):
                        proc.stdin.write(f"{qi} {mode}\n")
                        proc.stdin.flush()
                        t[side, mode].append([float(x) for x in proc.stdout.readline().split()])
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    out = {"rev": args.rev, "code": code, "searches": args.timed * args.rounds, "load": os.getloadavg()}
    for side in procs:
        b, h = np.array(t[side, "binary+int8"]), np.array(t[side, "hybrid"])
        out[side] = {"binary+int8_p50": {"wall": float(np.median(b[:, 0])), "cpu": float(np.median(b[:, 1]))},
                     "hybrid_p50": {"wall": float(np.median(h[:, 0])), "cpu": float(np.median(h[:, 1]))},
                     "added_p50": {"wall": float(np.median(h[:, 0] - b[:, 0])),
                                   "cpu": float(np.median(h[:, 1] - b[:, 1]))}}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out), file=sys.stderr)


if __name__ == "__main__":
    main()
