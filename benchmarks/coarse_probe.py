"""Coarse quantizer cost: choosing a query's nprobe lists exactly (memory.ivf) vs with an hnswlib graph.

Two kinds of centroids, as the store has them:
- vector centroids (the store's lists, ``memory.partition``): float32 [nlist, 384] unit
  vectors; exact = one matrix-vector product and a partial sort (``ivf.probe_vectors``);
- binary centroids (lists fitted on codes): 256-bit codes; exact = popcount
  (``ivf.probe``); hnswlib indexes them as ±1 float vectors.
hnswlib: inner product, M = 16, ef_construction = 200, ef = nprobe; its recall of the
exact nprobe lists is reported too. 200 random queries, single-threaded, ms per query.

    flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/coarse_probe.py   # needs pip install hnswlib
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _hnsw(data: np.ndarray, queries: np.ndarray, nprobe: int):
    import hnswlib

    g = hnswlib.Index(space="ip", dim=data.shape[1])
    g.init_index(max_elements=len(data), M=16, ef_construction=200, random_seed=0)
    g.add_items(data, np.arange(len(data)), num_threads=1)
    g.set_ef(nprobe)
    g.set_num_threads(1)
    t = time.perf_counter()
    got = [g.knn_query(x[None, :], k=nprobe)[0][0] for x in queries]
    return 1e3 * (time.perf_counter() - t) / len(queries), got


def main() -> None:
    from hashmem.memory.backends.local import ivf
    from hashmem.memory.kernels import topk as kernels

    rng = np.random.default_rng(0)
    print("| centroids | nlist | nprobe | exact probe ms | hnswlib ms | hnswlib recall of the exact lists |")
    print("|---|---|---|---|---|---|")
    for nlist in (2048, 8192):
        nprobe = 256
        # vector centroids
        cents = _unit(rng.standard_normal((nlist, 384)))
        q = _unit(rng.standard_normal((200, 384)))
        t = time.perf_counter()
        exact = [ivf.probe_vectors(cents, x, nprobe) for x in q]
        ex_ms = 1e3 * (time.perf_counter() - t) / len(q)
        h_ms, got = _hnsw(cents, q, nprobe)
        rec = np.mean([len(set(a.tolist()) & set(b.tolist())) / nprobe for a, b in zip(exact, got, strict=True)])
        print(f"| vectors (384 float) | {nlist} | {nprobe} | {ex_ms:.3f} | {h_ms:.3f} | {rec:.3f} |", flush=True)
        # binary centroids
        codes = rng.integers(0, 256, (nlist, 32), dtype=np.uint8)
        words = kernels.to_words(codes)
        qc = rng.integers(0, 256, (200, 32), dtype=np.uint8)
        qw = kernels.to_words(qc)
        t = time.perf_counter()
        exact = [ivf.probe(words, x, nprobe) for x in qw]
        ex_ms = 1e3 * (time.perf_counter() - t) / len(qw)
        signs = lambda c: np.unpackbits(c, axis=1).astype(np.float32) * 2 - 1  # noqa: E731
        h_ms, got = _hnsw(signs(codes), signs(qc), nprobe)
        rec = np.mean([len(set(a.tolist()) & set(b.tolist())) / nprobe for a, b in zip(exact, got, strict=True)])
        print(f"| codes (256 bits) | {nlist} | {nprobe} | {ex_ms:.3f} | {h_ms:.3f} | {rec:.3f} |", flush=True)


if __name__ == "__main__":
    main()
