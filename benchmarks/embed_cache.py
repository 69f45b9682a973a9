"""Embed the real corpora the scale benchmarks use, once, into $HASHMEM_BENCH_CACHE (default /tmp/hashmem-bench-cache).

    .venv/bin/python benchmarks/embed_cache.py

Writes scifact-corpus.npy (5,183 title + abstract), scifact-queries.npy (train queries with qrels),
with --newsgroups also newsgroups.npy (18,846 posts, first 256 tokens); all-MiniLM-L6-v2 through
hashmem's default backend.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))


def main() -> None:
    from hashmem.memory.embedding.embedder import Embedder

    emb = Embedder()
    CACHE.mkdir(parents=True, exist_ok=True)
    sf = DATA / "scifact-train"
    if not (CACHE / "scifact-corpus.npy").exists():
        done = CACHE / f"scifact-corpus-{emb.backend}.npy"  # left by benchmarks/ingest.py
        if done.exists():
            np.save(CACHE / "scifact-corpus.npy", np.load(done))
        else:
            docs = [json.loads(line) for line in open(sf / "corpus.jsonl")]
            texts = [(d["title"] + ". " + d["text"]).strip() for d in docs]
            np.save(CACHE / "scifact-corpus.npy", emb.encode(texts, progress=True))
        queries = {q["_id"]: q["text"] for q in map(json.loads, open(sf / "queries.jsonl"))}
        qids = sorted({line.split("\t")[0] for line in list(open(sf / "qrels.tsv"))[1:]} & set(queries))
        np.save(CACHE / "scifact-queries.npy", emb.encode([queries[q] for q in qids]))
    if "--newsgroups" in sys.argv and not (CACHE / "newsgroups.npy").exists():
        with gzip.open(DATA / "newsgroups20" / "docs.jsonl.gz", "rt") as f:
            texts = [t for t in (json.loads(line)["text"].strip() for line in f) if t]
        np.save(CACHE / "newsgroups.npy", emb.encode(texts, progress=True))
    print({p.name: np.load(p).shape for p in sorted(CACHE.glob("*.npy"))})


if __name__ == "__main__":
    main()
