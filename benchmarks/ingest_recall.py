"""Item 4, quality: recall@10 on SciFact-train (qrels) with torch fp32 vs the int8 ONNX backend.

Exact float search over the 5,183 abstracts (title + abstract), 809 train claims.
Embeddings are cached in $HASHMEM_BENCH_CACHE (the ONNX ones by benchmarks/embed_cache.py).

    .venv/bin/python benchmarks/embed_cache.py
    .venv/bin/python benchmarks/ingest_recall.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train"


def main() -> None:
    from hashmem.memory.embedding.embedder import Embedder

    docs = [json.loads(line) for line in open(DATA / "corpus.jsonl")]
    texts = [(d["title"] + ". " + d["text"]).strip() for d in docs]
    doc_ids = [d["_id"] for d in docs]
    queries = {q["_id"]: q["text"] for q in map(json.loads, open(DATA / "queries.jsonl"))}
    qrels: dict[str, set[str]] = {}
    for line in list(open(DATA / "qrels.tsv"))[1:]:
        q, d, _ = line.rstrip("\n").split("\t")
        qrels.setdefault(q, set()).add(d)
    qids = sorted(set(qrels) & set(queries))
    out = {"queries": len(qids), "passages": len(texts)}
    embs = {}
    for backend in ("onnx-int8", "torch"):
        e = Embedder(backend=backend)
        f = CACHE / f"scifact-corpus-{backend}.npy"
        if not f.exists():
            np.save(f, e.encode(texts, progress=True))
        corpus = np.load(f)
        qe = e.encode([queries[q] for q in qids])
        top = np.argsort(-(qe @ corpus.T), axis=1)[:, :10]
        r = [len({doc_ids[j] for j in row} & qrels[q]) / len(qrels[q]) for q, row in zip(qids, top, strict=True)]
        out[f"recall10_{backend}"] = float(np.mean(r))
        embs[backend] = corpus
    out["recall10_loss"] = out["recall10_torch"] - out["recall10_onnx-int8"]
    out["mean_cosine"] = float((embs["torch"] * embs["onnx-int8"]).sum(axis=1).mean())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
