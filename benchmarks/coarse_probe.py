"""Coarse quantizer cost: the exact popcount probe (memory.ivf.probe) vs an hnswlib graph over the
same binary centroids (as ±1 float vectors, inner product), returning nlist/16 lists per query.

    flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/coarse_probe.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import hnswlib

    from memory import ivf, kernels

    rng = np.random.default_rng(0)
    print("| nlist | nprobe | popcount probe ms | hnswlib ms (ef = nprobe, M = 16) |\n|---|---|---|---|")
    for nlist in (2048, 8192):
        nprobe = nlist // 16
        cents = kernels.to_words(rng.integers(0, 256, (nlist, 32), dtype=np.uint8))
        q = kernels.to_words(rng.integers(0, 256, (200, 32), dtype=np.uint8))
        t = time.perf_counter()
        for x in q:
            ivf.probe(cents, x, nprobe)
        ours = (time.perf_counter() - t) / len(q)
        f = np.unpackbits(kernels.from_words(cents, 32), axis=1).astype(np.float32) * 2 - 1
        qf = np.unpackbits(kernels.from_words(q, 32), axis=1).astype(np.float32) * 2 - 1
        index = hnswlib.Index(space="ip", dim=256)
        index.init_index(nlist, ef_construction=100, M=16)
        index.add_items(f)
        index.set_ef(max(nprobe, 50))
        index.set_num_threads(1)
        t = time.perf_counter()
        for x in qf:
            index.knn_query(x[None], k=nprobe)
        hn = (time.perf_counter() - t) / len(q)
        print(f"| {nlist} | {nprobe} | {1e3 * ours:.3f} | {1e3 * hn:.3f} |")


if __name__ == "__main__":
    main()
