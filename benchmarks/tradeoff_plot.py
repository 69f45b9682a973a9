"""The trade-off plot of issue 4 (item 5): recall@10 against code length and candidates, on SciFact.

Corpus: 5,183 SciFact abstracts; queries: the 809 train claims; truth: exact
float32 top-10 of the same embeddings (all-MiniLM-L6-v2, hashmem's default
backend), from ``benchmarks/embed_cache.py``. The pipeline is the store's (int8,
ITQ codes, Hamming 4·C, asymmetric C, int8 rerank) via ``memory.bench.tradeoff``.

    .venv/bin/python benchmarks/embed_cache.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/tradeoff_plot.py docs/tradeoff.png
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))


def main() -> None:
    from hashmem.evaluation import bench

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/tradeoff.png")
    corpus = np.load(CACHE / "scifact-corpus.npy")
    queries = np.load(CACHE / "scifact-queries.npy")
    rows = bench.tradeoff(corpus, queries)
    for r in rows:
        print(json.dumps(r), flush=True)
    bench.plot_tradeoff(rows, out, title=f"SciFact: {len(corpus):,} passages, {len(queries)} queries, "
                                         "truth = float32 top-10")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
