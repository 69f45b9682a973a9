"""Embed the real corpora the scale benchmarks use, once, into $HASHMEM_BENCH_CACHE (default /tmp/hashmem-bench-cache).

    .venv/bin/python benchmarks/embed_cache.py

Writes scifact-corpus.npy (5,183 title + abstract), scifact-queries.npy (train queries with qrels),
with --newsgroups also newsgroups.npy (18,846 posts, first 256 tokens); all-MiniLM-L6-v2 through
hashmem's default backend.

``--distractors N`` embeds the first N passages of ``distractor_passages()`` (20 Newsgroups posts
chunked as ``hashmem add`` chunks them, at 64 tokens) in parts of 5,000 (``.bench-cache/distractors-00000.npy``,
...), so a run cut short leaves every finished part usable (``benchmarks/peers.py`` at 100k).
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


PART = 5000
DISTRACTORS = Path(__file__).resolve().parents[1] / ".bench-cache"  # beside eval_grid's SciFact cache
TOKENS = 64  # 128-token passages give only 56,971; 64 give enough for 100k with SciFact


def distractor_passages(n: int) -> list[str]:
    """The first n 64-token passages of the 20 Newsgroups posts, in file order (peers.py's distractors)."""
    from hashmem.memory.chunk import chunk_text

    out: list[str] = []
    with gzip.open(DATA / "newsgroups20" / "docs.jsonl.gz", "rt") as f:
        for line in f:
            out.extend(p.text for p in chunk_text(json.loads(line)["text"], tokens=TOKENS) if p.text.strip())
            if len(out) >= n:
                break
    return out[:n]


def cached_distractors(n: int) -> tuple[list[str], np.ndarray]:
    """(texts, embeddings) of as many of the first n distractors as finished parts hold."""
    parts = []
    for i in range(0, n, PART):
        path = DISTRACTORS / f"distractors-{i:05d}.npy"
        if not path.exists():
            break
        parts.append(np.load(path))
    emb = np.concatenate(parts)[:n] if parts else np.zeros((0, 384), np.float32)
    return distractor_passages(len(emb)), emb


def embed_distractors(emb, n: int) -> None:
    texts = distractor_passages(n)
    for i in range(0, len(texts), PART):
        path = DISTRACTORS / f"distractors-{i:05d}.npy"
        if not path.exists():
            DISTRACTORS.mkdir(exist_ok=True)
            np.save(path, emb.encode(texts[i : i + PART], progress=True))
            print(f"distractors {i + PART} of {len(texts)}", file=sys.stderr, flush=True)


def main() -> None:
    from hashmem.memory.embedding.embedder import Embedder

    emb = Embedder()
    CACHE.mkdir(parents=True, exist_ok=True)
    sf = DATA / "scifact-train"
    if "--distractors" in sys.argv:  # alone: peers.py takes SciFact's from eval_grid's cache
        embed_distractors(emb, int(sys.argv[sys.argv.index("--distractors") + 1]))
        return
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
