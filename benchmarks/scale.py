"""Item 3 of issue 4: IVF vs brute-force Hamming top-k at 1M and 10M codes, nprobe sweep.

Codes: sign codes (centred random hyperplanes) of vectors drawn from a Gaussian
mixture fitted to real all-MiniLM-L6-v2 embeddings (SciFact + 20 Newsgroups,
``benchmarks/embed_cache.py``; 256 clusters, shared within-cluster covariance).
Queries: 64 held-out draws from the same mixture. Recall: share of the exact
Hamming top-k found, tie-aware. Two partitions: lists fitted on the codes
(k-majority), probed by the query's code or by its projections; and the store's
lists fitted on the vectors (spherical k-means, ``memory.partition``), probed with
the query vector. Times: the fastest of several rounds (shared
machine), single queries, k = 400 (what the store asks for C = 100).

    .venv/bin/python benchmarks/embed_cache.py
    .venv/bin/python benchmarks/scale.py --n 1000000 10000000 --cache /tmp/hashmem-bench-cache --generate-only
    OPENBLAS_NUM_THREADS=1 flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/scale.py \
        --n 1000000 10000000 --cache /tmp/hashmem-bench-cache
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))


def real_mixture():
    from hashmem.evaluation import bench

    parts = [np.load(CACHE / f) for f in ("scifact-corpus.npy", "newsgroups.npy") if (CACHE / f).exists()]
    if not parts:
        print("no cached real embeddings: run benchmarks/embed_cache.py; using the parametric mixture", flush=True)
        return bench.parametric_mixture(), "parametric"
    x = np.concatenate(parts)
    return bench.fit_mixture(x, clusters=256), f"fitted to {len(x):,} real embeddings"


def _data(args, mix, n):
    """The synthetic codes, queries and partition of size n: generated, or read from ``--cache``."""
    from hashmem.evaluation import bench

    path = args.cache / f"scale-n{n}-b{args.bits}.npz" if args.cache else None
    if path is not None and path.exists():
        z = np.load(path)
        return z["codes"], (z["queries"], z["qproj"], z["qvecs"]), (z["centroids"], z["lists"])
    codes, (queries, qproj, qvecs), (centroids, lists) = bench.synthetic_partitioned(mix, n, args.bits)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, codes=codes, queries=queries, qproj=qproj, qvecs=qvecs, centroids=centroids, lists=lists)
    return codes, (queries, qproj, qvecs), (centroids, lists)


def main() -> None:
    from hashmem.evaluation import bench
    from hashmem.memory.backends.local import ivf
    from hashmem.memory.backends.local.index import NamespaceIndex
    from hashmem.memory.kernels import topk as kernels

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--bits", type=int, default=256)
    ap.add_argument("--k", type=int, default=400)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--partition", choices=["codes", "vectors", "both"], default="both",
                    help="lists fitted on the codes (k-majority), on the vectors (the store's), or both")
    ap.add_argument("--cache", type=Path, help="keep the generated data here and reuse it (10M: 16 min to make)")
    ap.add_argument("--generate-only", action="store_true", help="only make (and cache) the data")
    args = ap.parse_args()
    mix, source = real_mixture()
    print(json.dumps({"mixture": source}), flush=True)
    for n in args.n:
        t = time.time()
        codes, (queries, qproj, qvecs), (centroids, lists) = _data(args, mix, n)
        if args.generate_only:
            continue
        qwords = kernels.to_words(queries)
        gen_s = time.time() - t
        ids = np.arange(1, n + 1, dtype=np.int64)
        space = NamespaceIndex(-(-args.bits // 64), args.bits, ivf_min_rows=None)
        for s in range(0, n, 1 << 20):
            space.add(ids[s : s + (1 << 20)], kernels.to_words(codes[s : s + (1 << 20)]))
        del codes
        space.search_batch(qwords[:1], args.k)
        brute = bench.time_queries(lambda q, sp=space: sp.search_batch(q, args.k), qwords, 1, min_seconds=2.0)
        ref_ids, ref_d = space.search_batch(qwords, args.k)
        base = {"n": n, "bits": args.bits, "k": args.k, "generate_s": round(gen_s, 1), "brute_ms": round(1e3 * brute, 3)}
        print(json.dumps(base), flush=True)
        runs = []
        if args.partition in ("codes", "both"):
            runs += [("codes", "code", {}), ("codes", "projection", {"query_proj": qproj})]
        if args.partition in ("vectors", "both"):
            runs += [("vectors", "vector", {"query_vecs": qvecs})]
        layout = None
        for part, probe_by, extra in runs:
            if part != layout:
                t = time.time()
                if part == "codes":
                    space.build_ivf()
                else:
                    space.set_partition(centroids, ids, lists)
                build_s, layout = time.time() - t, part
            for nprobe in args.nprobe:
                def run(i, p=nprobe, sp=space, ex=extra, qw=qwords):
                    return sp.search_batch(qw[i], args.k, nprobe=p, **{key: v[i] for key, v in ex.items()})
                sub = bench.time_queries(run, np.arange(len(qwords)), 1, min_seconds=2.0)
                got_ids, got_d = run(np.arange(len(qwords)))
                row = {**base, "partition": part, "probe_by": probe_by, "nlist": space.nlist,
                       "layout_s": round(build_s, 1), "nprobe": nprobe,
                       "default": nprobe == ivf.default_nprobe(space.nlist, k=args.k, n=n),
                       "ivf_ms": round(1e3 * sub, 3), "speedup": round(brute / sub, 2),
                       "recall": round(bench.recall_tie_aware(got_ids, got_d, ref_d), 4)}
                print(json.dumps(row), flush=True)
        space = None  # free before the next size


if __name__ == "__main__":
    main()
