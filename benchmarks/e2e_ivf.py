"""Item 3, end to end: recall@10 against float32 of the store's pipeline, brute-force vs IVF candidates,
on SciFact hidden among synthetic distractors (so the IVF is at the size where it switches on).

Corpus: the 5,183 SciFact abstracts plus N distractors drawn from a Gaussian
mixture fitted to them; queries: the 809 SciFact train claims; truth: exact float32
top-10 over everything. Pipeline (as ``Memory.search_embeddings``): int8
quantization, ITQ 256-bit codes fitted on the dequantized vectors, Hamming top
4·C (C = 100) from the brute-force index or from the IVF at its default nprobe
(lists probed by the query's code, and by its asymmetric score as the store does),
asymmetric top C, int8 cosine rerank, top 10.

    .venv/bin/python benchmarks/embed_cache.py
    OPENBLAS_NUM_THREADS=1 flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/e2e_ivf.py --n 1000000
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


def _truth(queries: np.ndarray, x: np.ndarray, k: int = 10, chunk: int = 200_000) -> np.ndarray:
    """Exact top-k ids by inner product, [len(queries), k] (ties: lowest id), computed chunk by chunk."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for s in range(0, len(x), chunk):
        sims = queries @ x[s : s + chunk].astype(np.float32).T  # [q, chunk]
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(sims, top, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, top + s], axis=1)
        order = np.lexsort((cand_i, -cand_s), axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    return best_i


def main() -> None:
    from hashmem.evaluation import bench
    from hashmem.memory import hashing, quantize
    from hashmem.memory.backends.local import ivf
    from hashmem.memory.backends.local.index import NamespaceIndex
    from hashmem.memory.kernels import topk as kernels

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000, help="distractors")
    ap.add_argument("--bits", type=int, default=256)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--nprobe", type=int, nargs="*", default=[])
    ap.add_argument("--vectors-only", action="store_true", help="only the store's lists (fitted on the vectors)")
    args = ap.parse_args()
    real = np.load(CACHE / "scifact-corpus.npy")
    queries = np.load(CACHE / "scifact-queries.npy")
    mix = bench.fit_mixture(real, clusters=128)
    rng = np.random.default_rng(0)
    n = len(real) + args.n
    # float32 up to 2M vectors; above, float16 storage (10M x 384 float32 would be 15 GB): the truth,
    # the quantizer and the codes are all computed from the same stored values
    x = np.empty((n, real.shape[1]), np.float32 if n <= 2_000_000 else np.float16)
    x[: len(real)] = real
    for s in range(0, args.n, 200_000):
        x[len(real) + s : len(real) + min(s + 200_000, args.n)] = bench.draw(mix, min(200_000, args.n - s), rng)
    truth = _truth(queries, x)
    quant = quantize.fit(x[rng.choice(n, 65536, replace=False)].astype(np.float32))
    qv = np.concatenate([quant.encode(x[s : s + 200_000].astype(np.float32)) for s in range(0, n, 200_000)])
    del x
    hasher = hashing.fit("itq", quant.decode(qv[rng.choice(n, 65536, replace=False)]), bits=args.bits)
    words = np.concatenate([kernels.to_words(hasher.encode(quant.decode(qv[s : s + 200_000])))
                            for s in range(0, n, 200_000)])
    ids = np.arange(n, dtype=np.int64)
    signs_of = lambda rows: hashing.unpack_signs(kernels.from_words(words[rows], args.bits // 8), args.bits)  # noqa: E731
    qwords = kernels.to_words(hasher.encode(queries))
    proj = hasher.project(queries)
    c = args.candidates

    def recall(cands) -> float:
        hit = 0
        for qi in range(len(queries)):
            ci = cands[qi][cands[qi] >= 0]
            s = signs_of(ci) @ proj[qi]
            ci = ci[np.lexsort((ci, -s))[:c]]
            sc = quantize.cosine(queries[qi : qi + 1], qv[ci], quant)[0]
            top = ci[np.lexsort((ci, -sc))[:10]]
            hit += len(set(top.tolist()) & set(truth[qi].tolist()))
        return hit / (10 * len(queries))

    space = NamespaceIndex(-(-args.bits // 64), args.bits, ivf_min_rows=None)
    space.add(ids, words)
    t = time.time()
    brute_c, _ = space.search_batch(qwords, 4 * c)
    brute_s = (time.time() - t) / len(queries)
    out = {"n": n, "bits": args.bits, "candidates": c, "recall10_brute": recall(brute_c),
           "brute_ms_per_query_batched": 1e3 * brute_s}
    nprobes = args.nprobe or [ivf.default_nprobe(2048, k=4 * c, n=n)]

    def run(label, **probe_with):
        for nprobe in nprobes:
            t = time.time()
            got = np.concatenate([space.search_batch(qwords[i : i + 1], 4 * c, nprobe=nprobe,
                                                     **{k: v[i : i + 1] for k, v in probe_with.items()})[0]
                                  for i in range(len(queries))])
            tag = f"{label}_nprobe{nprobe}"
            out[f"ivf_{tag}_ms_per_query"] = 1e3 * (time.time() - t) / len(queries)
            out[f"recall10_ivf_{tag}"] = recall(got)
            out[f"loss_{tag}"] = out["recall10_brute"] - out[f"recall10_ivf_{tag}"]
            print(json.dumps(out), flush=True)

    if not args.vectors_only:
        # lists fitted on the codes (k-majority), probed by the query's code, then by its projections
        space.build_ivf()
        out["nlist"] = space.nlist
        run("codes_by_code")
        run("codes_by_projection", query_proj=proj)
    # the store's way: lists fitted on the dequantized vectors, probed with the query vector
    t = time.time()
    nlist = ivf.default_nlist(n)
    pick = np.sort(rng.choice(n, size=ivf.VECTOR_SAMPLE_PER_LIST * nlist, replace=False))
    centroids = ivf.fit_vector_centroids(quant.decode(qv[pick]), nlist)
    lists = np.concatenate([ivf.assign_vectors(quant.decode(qv[s : s + 65536]), centroids)
                            for s in range(0, n, 65536)])
    out["vector_partition_fit_s"] = round(time.time() - t, 1)
    space = NamespaceIndex(-(-args.bits // 64), args.bits, ivf_min_rows=None)
    space.add(ids, words)
    space.set_partition(centroids, ids, lists)
    out["nlist"] = space.nlist
    run("vectors", query_vecs=queries)

if __name__ == "__main__":
    main()
