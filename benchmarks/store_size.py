"""On-disk bytes per passage of a store at default settings, by part (SQLite's dbstat), at two sizes.

    .venv/bin/python benchmarks/store_size.py [--n 100000] [--out benchmarks/results/store_size.json]

1. **scifact**: the 5,183 SciFact passages stored as ``hashmem eval`` stores them
   (text = title + abstract, metadata ``{"_id"}``) and, a second store, as ``hashmem
   add corpus.jsonl`` stores them (metadata ``{"_id", "title", "source"}``). Embeddings:
   the real all-MiniLM-L6-v2 ones cached by ``benchmarks/embed_cache.py`` when present
   (``$HASHMEM_BENCH_CACHE``), else Gaussian draws (see below).
2. **mixed** (``--n``, default 100,000): real passages from every corpus in
   ../shared/data — SciFact and Cranfield (title + abstract, one passage each),
   LoCoMo turns, 20 Newsgroups posts and the Canterbury texts chunked into
   128-token passages as ``hashmem add`` chunks files — cycled in that order until
   ``--n`` passages (a corpus seen again is re-chunked at 96 tokens, so repeats are
   not identical passages). Metadata as ``hashmem add`` gives: ``{"_id", "source"}``
   for JSONL rows, ``{"source", "start", "end"}`` for chunks. Hints and lexicon are
   the real ones (real text through the store's own extraction). Embedding 100k
   passages on a shared 2-core CPU takes hours, so the embeddings are Gaussian
   draws, unit-normalized: the code (32 B), int8 vector (384 B) are fixed-length,
   so their bytes on disk are the same as with real embeddings; only which codes
   and vectors are stored differs.

Every store is created with ``Memory`` at default settings and closed (WAL
checkpointed) before measuring; the figures are what ``Memory.stats()`` reports.

``--page-sizes 4096 8192`` also builds the first SciFact store with those SQLite page
sizes (the default is ``storage.PAGE_SIZE``), to compare. ``--keep DIR`` keeps the
stores (``DIR/scifact-eval.db``, ``scifact-add.db``, ``mixed.db``) for other
benchmarks (``benchmarks/namespace_index.py``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))


def scifact_rows() -> list[tuple[str, dict, dict]]:
    """(text, eval metadata, add metadata) of the SciFact corpus."""
    out = []
    path = DATA / "scifact-train" / "corpus.jsonl"
    for line in path.open():
        d = json.loads(line)
        title, body = d["title"].strip(), d["text"].strip()
        text = f"{title} {body}" if title and body else title or body
        out.append((text, {"_id": d["_id"]}, {"_id": d["_id"], "title": d["title"], "source": str(path)}))
    return out


def mixed_passages(n: int) -> list[tuple[str, dict]]:
    """n real (text, metadata) passages from all corpora, cycled (re-chunked at 96 tokens on repeats)."""
    from hashmem.memory.chunk import chunk_text

    def corpora(tokens: int):
        for name in ("scifact-train", "cranfield"):
            path = DATA / name / "corpus.jsonl"
            for line in path.open():
                d = json.loads(line)
                text = f"{d.get('title', '')} {d['text']}".strip()
                if text:
                    yield text, {"_id": d["_id"], "source": str(path)}
        path = DATA / "locomo" / "corpus.jsonl"
        for line in path.open():
            d = json.loads(line)
            if d["text"].strip():
                yield d["text"], {"_id": d["_id"], "source": str(path)}
        path = DATA / "newsgroups20" / "docs.jsonl.gz"
        with gzip.open(path, "rt") as f:
            for line in f:
                d = json.loads(line)
                src = f"{path}#{d['_id']}"
                for p in chunk_text(d["text"], tokens=tokens) if d["text"].strip() else ():
                    yield p.text, {"source": src, "start": p.start, "end": p.end}
        for f in sorted((DATA / "canterbury").glob("*.txt")):
            text = f.read_text(encoding="latin-1")
            for p in chunk_text(text, tokens=tokens):
                yield p.text, {"source": str(f), "start": p.start, "end": p.end}

    out: list[tuple[str, dict]] = []
    rounds = 0
    while len(out) < n:
        for row in corpora(128 if rounds == 0 else 96):
            out.append(row)
            if len(out) == n:
                break
        rounds += 1
    return out


def gaussian(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(path: Path, rows: list[tuple[str, dict]], emb: np.ndarray) -> dict:
    from hashmem.memory import Memory

    t = time.perf_counter()
    with Memory(path) as mem:
        for s in range(0, len(rows), 8192):
            part = rows[s : s + 8192]
            mem.add([r[0] for r in part], metadata=[r[1] for r in part], embeddings=emb[s : s + len(part)],
                    progress=False)
    seconds = time.perf_counter() - t
    with Memory(path, create=False) as mem:
        st = mem.stats()
    parts = st.file_parts if hasattr(st, "file_parts") else {}
    return {
        "passages": st.records,
        "file_bytes": st.file_bytes,
        "bytes_per_passage": round(st.file_bytes / st.records, 1),
        "content_bytes_per_passage": {k: round(v, 1) for k, v in st.bytes_per_passage.items()},
        "file_parts_bytes": parts,
        "file_parts_per_passage": {k: round(v / st.records, 1) for k, v in parts.items()},
        "parts_sum_over_file": round(sum(parts.values()) / st.file_bytes, 4) if parts else None,
        "seconds_to_build": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-mixed", action="store_true")
    ap.add_argument("--page-sizes", type=int, nargs="*", default=[])
    ap.add_argument("--keep", type=Path, default=None, help="keep the stores in this directory")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hashmem.memory.config import FORMAT_VERSION

    result: dict = {"format_version": FORMAT_VERSION}
    sf = scifact_rows()
    cached = CACHE / "scifact-corpus.npy"
    if cached.exists():
        emb, source = np.load(cached), f"real all-MiniLM-L6-v2 embeddings ({cached})"
    else:
        emb, source = gaussian(len(sf), 384), "Gaussian draws (no cache)"
    from hashmem.memory.backends.local import storage

    with tempfile.TemporaryDirectory(prefix="hashmem-size-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        result["page_size"] = storage.PAGE_SIZE
        result["scifact_eval_metadata"] = {"embeddings": source,
                                           **build(where / "scifact-eval.db", [(t, m) for t, m, _ in sf], emb)}
        print(json.dumps(result["scifact_eval_metadata"]), flush=True)
        default = storage.PAGE_SIZE
        for size in args.page_sizes:
            storage.PAGE_SIZE = size
            try:
                r = build(Path(tmp) / f"page{size}.db", [(t, m) for t, m, _ in sf], emb)
            finally:
                storage.PAGE_SIZE = default
            result.setdefault("scifact_eval_metadata_page_size", {})[size] = r
            print(size, json.dumps(r), flush=True)
        result["scifact_add_metadata"] = {"embeddings": source,
                                          **build(where / "scifact-add.db", [(t, m) for t, _, m in sf], emb)}
        print(json.dumps(result["scifact_add_metadata"]), flush=True)
        if not args.skip_mixed:
            rows = mixed_passages(args.n)
            result["mixed"] = {"embeddings": "Gaussian draws, unit-normalized (fixed-length parts: same bytes)",
                               **build(where / "mixed.db", rows, gaussian(len(rows), 384, seed=1))}
            print(json.dumps(result["mixed"]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
