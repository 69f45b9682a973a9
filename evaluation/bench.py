"""Scale benchmark: synthetic codes with embedding-like structure, brute force vs IVF, RSS, faiss ratio.

Synthetic data: a Gaussian mixture on the unit sphere, either fitted to real
embeddings (``fit_mixture``: cluster means plus one shared within-cluster
covariance) or, with nothing to fit, a parametric one whose covariance spectrum
decays like a sentence embedder's (eigenvalue i ∝ (i + 1) ** -0.8). Vectors are
drawn in chunks, unit-normalized and hashed with centred random hyperplanes
(sign LSH codes); as they are drawn, each also gets its IVF list the way a store
assigns it (spherical k-means centroids fitted on a sample drawn first; see
``memory.partition``). Queries are drawn from the same mixture and held out.

What it measures (``run``): ms per query and queries/s of the exact scan and of
the IVF (probed with the query vectors, as the store does), the IVF's recall of the exact Hamming top-k (tie-aware: a returned id
counts when its distance is <= the exact k-th distance), resident memory growth
per passage of the index, and ours/faiss ``IndexBinaryFlat`` time (faiss timed in a
subprocess so the two thread pools do not disturb each other).

``end_to_end`` measures the store's own search: real passages among synthetic
ones from a mixture fitted to them, the store's int8 vectors, ITQ codes and (at
sizes where the store uses them) IVF lists fitted on the vectors with the default
probe; recall@10 against float32, beside the recall of the exact Hamming top 4·C.

What it does not do: embed text or touch a store (``benchmarks/`` and the CLI do that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from hashmem.memory.backends.local import index as index_mod
from hashmem.memory.backends.local import ivf
from hashmem.memory.kernels import topk as kernels


@dataclass(frozen=True)
class Mixture:
    """means float32 [c, dim], weights float64 [c], chol float32 [dim, dim] (within-cluster covariance factor)."""

    means: np.ndarray
    weights: np.ndarray
    chol: np.ndarray


def fit_mixture(x: np.ndarray, *, clusters: int = 256, iterations: int = 10, seed: int = 0) -> Mixture:
    """Fit cluster means (spherical k-means) and a shared residual covariance to real embeddings x [n, dim]."""
    x = np.asarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    clusters = min(clusters, len(x))
    c = x[rng.choice(len(x), clusters, replace=False)]
    for _ in range(iterations):
        a = np.argmax(x @ c.T, axis=1)
        for j in range(clusters):
            m = x[a == j]
            c[j] = m.mean(axis=0) if len(m) else x[rng.integers(len(x))]
    a = np.argmax(x @ c.T, axis=1)
    resid = x - c[a]
    cov = np.cov(resid.T.astype(np.float64)) + 1e-6 * np.eye(x.shape[1])
    weights = np.bincount(a, minlength=clusters).astype(np.float64) + 1e-3
    return Mixture(c.astype(np.float32), weights / weights.sum(), np.linalg.cholesky(cov).astype(np.float32))


def parametric_mixture(*, dim: int = 384, clusters: int = 256, seed: int = 0) -> Mixture:
    """A mixture with a decaying spectrum and no real data behind it."""
    rng = np.random.default_rng(seed)
    scale = (np.arange(dim) + 1.0) ** -0.4  # std; variance ∝ i^-0.8
    basis = (rng.standard_normal((dim, dim)) / np.sqrt(dim) * scale).astype(np.float32)  # [dim, dim]
    means = rng.standard_normal((clusters, dim)).astype(np.float32) @ basis.T
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    chol = 0.6 * basis / np.linalg.norm(scale) * np.sqrt(dim)
    return Mixture(means, np.full(clusters, 1.0 / clusters), chol.astype(np.float32))


def draw(mix: Mixture, n: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors float32 [n, dim] from the mixture."""
    comp = rng.choice(len(mix.weights), size=n, p=mix.weights)
    z = rng.standard_normal((n, mix.chol.shape[0]), dtype=np.float32)
    x = mix.means[comp] + z @ mix.chol.T
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sign_hasher(mix: Mixture, bits: int, *, seed: int = 0):
    """(mean [dim], projection [dim, bits]): centred random Gaussian hyperplanes (no LAPACK: fast anywhere)."""
    rng = np.random.default_rng(seed)
    mean = draw(mix, 4096, rng).mean(axis=0)
    return mean.astype(np.float32), rng.standard_normal((mix.chol.shape[0], bits), dtype=np.float32)


def synthetic_partitioned(mix: Mixture, n: int, bits: int, *, vectors: bool = True, chunk: int = 200_000,
                          seed: int = 0, n_queries: int = 64):
    """Codes of n mixture draws and held-out queries, and the store's IVF partition of the draws.

    Returns ``(codes uint8 [n, bits / 8], (query codes, query projections float32 [q, bits],
    query vectors float32 [q, dim]), (centroids float32 [nlist, dim], lists int32 [n]))``; the
    partition is ``(None, None)`` without ``vectors``. Centroids are fitted on a sample drawn
    first, then each draw gets its list as it is hashed, so no vector is kept.
    """
    mean, proj = sign_hasher(mix, bits, seed=seed)
    rng = np.random.default_rng(seed + 1)
    centroids = lists = None
    if vectors:
        nlist = ivf.default_nlist(n)
        centroids = ivf.fit_vector_centroids(draw(mix, ivf.VECTOR_SAMPLE_PER_LIST * nlist, rng), nlist)
        lists = np.empty(n, dtype=np.int32)
    codes = np.empty((n, bits // 8), dtype=np.uint8)
    for s in range(0, n, chunk):
        x = draw(mix, min(chunk, n - s), rng)
        codes[s : s + len(x)] = np.packbits((x - mean) @ proj > 0, axis=-1)
        if vectors:
            lists[s : s + len(x)] = ivf.assign_vectors(x, centroids)
    q = draw(mix, n_queries, rng).astype(np.float32)
    qproj = ((q - mean) @ proj).astype(np.float32)
    return codes, (np.packbits(qproj > 0, axis=-1), qproj, q), (centroids, lists)


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def recall_tie_aware(got_ids: np.ndarray, got_d: np.ndarray, ref_d: np.ndarray) -> float:
    """Share of the exact top-k matched: a returned id counts when its distance <= the exact k-th distance."""
    k = ref_d.shape[1]
    hits = 0
    for q in range(len(got_ids)):
        valid = got_ids[q] >= 0
        # at most as many hits at the k-th distance as the exact answer holds there
        kth = ref_d[q, -1]
        below = int((got_d[q][valid] < kth).sum())
        at = min(int((got_d[q][valid] == kth).sum()), int((ref_d[q] == kth).sum()))
        hits += min(k, below + at)
    return hits / (k * len(got_ids))


def time_queries(fn, queries: np.ndarray, batch: int, *, min_seconds: float = 1.0) -> float:
    """Seconds per query of fn(query_batch), repeated until min_seconds; the fastest round counts."""
    best = float("inf")
    spent = 0.0
    while spent < min_seconds or best == float("inf"):
        t = time.perf_counter()
        for s in range(0, len(queries), batch):
            fn(queries[s : s + batch])
        dt = time.perf_counter() - t
        spent += dt
        best = min(best, dt / len(queries))
        if spent > 5 * min_seconds:
            break
    return best


def faiss_seconds_per_query(codes: np.ndarray, queries: np.ndarray, k: int, batch: int) -> float | None:
    """faiss IndexBinaryFlat seconds per query, in a subprocess; None when faiss is not installed."""
    try:
        import importlib.util

        if importlib.util.find_spec("faiss") is None:
            return None
    except (ImportError, ValueError):
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/codes.npy", codes)
        np.save(f"{tmp}/queries.npy", queries)
        script = (
            "import sys, json, numpy as np, faiss, time\n"
            f"faiss.omp_set_num_threads({os.cpu_count() or 1})\n"
            f"c = np.load('{tmp}/codes.npy'); q = np.load('{tmp}/queries.npy')\n"
            "ix = faiss.IndexBinaryFlat(c.shape[1] * 8); ix.add(c)\n"
            f"b = {batch}; k = {k}\n"
            "ix.search(q[:b], k)\n"
            "best = 1e9; spent = 0.0\n"
            "while spent < 1.0:\n"
            "    t = time.perf_counter()\n"
            "    for s in range(0, len(q), b): ix.search(q[s:s+b], k)\n"
            "    dt = time.perf_counter() - t; spent += dt; best = min(best, dt / len(q))\n"
            "print(json.dumps(best))\n"
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        return float(json.loads(out.stdout.strip().splitlines()[-1]))


def run(
    n: int,
    bits: int,
    *,
    batch: int = 1,
    k: int = 400,
    nprobe: int | None = None,
    mixture: Mixture | None = None,
    n_queries: int = 64,
    seed: int = 0,
    faiss: bool = True,
    min_seconds: float = 1.0,
) -> dict:
    """Build an index of n synthetic codes and measure it.

    Args:
        n: passages (codes).
        bits: code length.
        batch: queries per call.
        k: candidates per query (the store asks 4 × ``candidates`` = 400 by default).
        nprobe: IVF lists probed (default ``ivf.default_nprobe``).
        mixture: where vectors come from (default ``parametric_mixture``).
        n_queries: held-out queries timed and scored.
        seed: data seed.
        faiss: also time faiss ``IndexBinaryFlat`` when it is installed.
        min_seconds: time each search path at least this long (the fastest round counts).

    Returns:
        ``{"n", "bits", "k", "batch", "brute": {"ms_per_query", "qps"}, "sublinear": {"ms_per_query",
        "qps", "recall", "nlist", "nprobe"}, "speedup", "faiss_ratio", "rss_bytes_per_passage"}``.
    """
    mix = mixture or parametric_mixture(seed=seed)
    codes, (queries, qproj, qvecs), (centroids, lists) = synthetic_partitioned(
        mix, n, bits, seed=seed, n_queries=n_queries)
    qwords = kernels.to_words(queries)
    ids = np.arange(1, n + 1, dtype=np.int64)
    warm = index_mod.NamespaceIndex(-(-bits // 64), bits, ivf_min_rows=None)  # compile before measuring
    warm.add(np.arange(1, 4097, dtype=np.int64), qwords[np.arange(4096) % len(qwords)])
    for b in (1, len(qwords)):  # single-query and batched kernels
        warm.search_batch(qwords[:b], k)
        warm.search_batch(qwords[:b], k, allowed=np.ones(warm.size, dtype=bool))
    warm.build_ivf(nlist=16)
    for b in (1, len(qwords)):
        warm.search_batch(qwords[:b], k, nprobe=2)
    del warm
    index_mod.release_freed_heap()  # trim before the baseline too, so both sides are trimmed
    before = rss_bytes()
    space = index_mod.NamespaceIndex(-(-bits // 64), bits, ivf_min_rows=None)
    for s in range(0, n, 1 << 20):
        space.add(ids[s : s + (1 << 20)], kernels.to_words(codes[s : s + (1 << 20)]))
    brute = time_queries(lambda q: space.search_batch(q, k), qwords, batch, min_seconds=min_seconds)
    ref_ids, ref_d = space.search_batch(qwords, k)
    index_mod.release_freed_heap()
    rss_brute = rss_bytes() - before
    space.set_partition(centroids, ids, lists)  # the store's IVF: lists fitted on the vectors
    del lists
    nprobe = nprobe or index_mod.ivf.default_nprobe(space.nlist, k=k, n=space.n_alive)
    sub = time_queries(lambda i: space.search_batch(qwords[i], k, nprobe=nprobe, query_vecs=qvecs[i]),
                       np.arange(len(qwords)), batch, min_seconds=min_seconds)
    got_ids, got_d = space.search_batch(qwords, k, nprobe=nprobe, query_vecs=qvecs)
    index_mod.release_freed_heap()  # what the index keeps, not the build's freed temporaries
    rss_ivf = rss_bytes() - before
    out = {
        "n": n,
        "bits": bits,
        "k": k,
        "batch": batch,
        "backend": kernels.resolve_backend("auto"),
        "brute": {"ms_per_query": 1e3 * brute, "qps": 1.0 / brute},
        "sublinear": {
            "ms_per_query": 1e3 * sub,
            "qps": 1.0 / sub,
            "recall": recall_tie_aware(got_ids, got_d, ref_d),
            "nlist": space.nlist,
            "nprobe": nprobe,
        },
        "speedup": brute / sub,
        "faiss_ratio": None,
        "rss_bytes_per_passage": max(rss_brute, rss_ivf) / n,
    }
    del ref_ids
    if faiss:
        f = faiss_seconds_per_query(codes, queries, k, batch)
        if f is not None:
            out["faiss_ratio"] = brute / f
            out["faiss_ms_per_query"] = 1e3 * f
    return out


# -- end to end: the store's own search over real passages among synthetic ones -----------


def _merge_topk(best_s, best_i, sims, offset, k):
    """Running exact top-k (scores, ids) per query after one more chunk of scores [q, chunk]; ties: lowest id."""
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    cand_s = np.concatenate([best_s, np.take_along_axis(sims, top, axis=1)], axis=1)
    cand_i = np.concatenate([best_i, top + offset], axis=1)
    order = np.lexsort((cand_i, -cand_s), axis=1)[:, :k]
    return np.take_along_axis(cand_s, order, axis=1), np.take_along_axis(cand_i, order, axis=1)


def end_to_end(
    real: np.ndarray,
    queries: np.ndarray,
    n: int,
    bits: int,
    *,
    candidates: int = 100,
    nprobe: int | None = None,
    k: int = 10,
    seed: int = 0,
    chunk: int = 200_000,
    min_seconds: float = 0.5,
) -> dict:
    """Recall@k against float32 of the store's search over real passages hidden among synthetic ones.

    The corpus is ``real`` plus ``n - len(real)`` draws from a mixture fitted to it
    (``fit_mixture``). Everything else is what a store of that size does: int8
    vectors (quantizer fitted on the real passages), ITQ codes fitted on a sample
    of the dequantized vectors, and, from ``index.IVF_MIN_ROWS`` passages on, IVF
    lists fitted on the vectors (``ivf.default_nlist``, spherical k-means on
    ``VECTOR_SAMPLE_PER_LIST`` vectors per list) probed with the query vector at
    ``ivf.default_nprobe``; then Hamming top 4·C, asymmetric top C, int8 rerank, top k.
    Truth: exact float32 top-k over the whole corpus.

    Args:
        real: float32 [m, dim] unit vectors of real passages.
        queries: float32 [q, dim] unit query vectors (not in ``real``).
        n: corpus size (at least ``len(real)``).
        bits: code length.
        candidates: C, the int8 rerank depth (the store's default 100).
        nprobe: IVF lists probed (default: the store's).
        k: recall@k.
        min_seconds: time each search path at least this long (the fastest round counts).

    Returns:
        ``{"n", "real_passages", "queries", "candidates", "store_uses_ivf", "nlist", "nprobe",
        "recall_at_10_store", "recall_at_10_brute", "loss", "hamming_recall", "ms_per_query_store",
        "ms_per_query_brute", "speedup"}``: ``recall_at_10_store`` is the store's search,
        ``recall_at_10_brute`` the same pipeline over the exact Hamming top 4·C, and
        ``hamming_recall`` how much of that exact top 4·C the IVF finds (tie-aware).
    """
    from hashmem.memory import hashing, quantize

    real = np.asarray(real, dtype=np.float32)
    queries = np.asarray(queries, dtype=np.float32)
    m, dim = real.shape
    n = max(n, m)
    rng = np.random.default_rng(seed + 2)
    mix = fit_mixture(real, clusters=min(128, m))
    quant = quantize.fit(real)
    qv = np.empty((n, dim), dtype=np.int8)  # [n, dim]: all the int8 vectors, as the store keeps on disk
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for s in range(0, n, chunk):
        x = real[s : s + chunk] if s < m else None
        if x is None or len(x) < min(chunk, n - s):  # the real passages first, then draws
            x = np.concatenate([x if x is not None else np.zeros((0, dim), np.float32),
                                draw(mix, min(chunk, n - s) - (len(x) if x is not None else 0), rng)])
        qv[s : s + len(x)] = quant.encode(x)
        best_s, best_i = _merge_topk(best_s, best_i, queries @ x.T, s, k)
    truth = best_i
    hasher = hashing.fit("itq", quant.decode(qv[np.sort(rng.choice(n, min(n, 65536), replace=False))]), bits=bits)
    words = np.concatenate([kernels.to_words(hasher.encode(quant.decode(qv[s : s + chunk])))
                            for s in range(0, n, chunk)])
    qwords = kernels.to_words(hasher.encode(queries))
    proj = hasher.project(queries)  # [q, bits]
    ids = np.arange(n, dtype=np.int64)
    c = candidates

    def rerank_recall(cands) -> float:
        hit = 0
        for qi in range(len(queries)):
            ci = cands[qi][cands[qi] >= 0]
            signs = hashing.unpack_signs(kernels.from_words(words[ci], bits // 8), bits)
            ci = ci[np.lexsort((ci, -(signs @ proj[qi])))[:c]]
            sc = quantize.cosine(queries[qi : qi + 1], qv[ci], quant)[0]
            hit += len(set(ci[np.lexsort((ci, -sc))[:k]].tolist()) & set(truth[qi].tolist()))
        return hit / (k * len(queries))

    space = index_mod.NamespaceIndex(-(-bits // 64), bits, ivf_min_rows=None)
    space.add(ids, words)
    one_by_one = np.arange(len(queries))[:, None]  # the store searches one query at a time
    brute_t = time_queries(lambda i: space.search_batch(qwords[i[0]], 4 * c), one_by_one, 1, min_seconds=min_seconds)
    brute_ids, brute_d = space.search_batch(qwords, 4 * c)
    out = {"n": n, "real_passages": m, "queries": len(queries), "candidates": c,
           "store_uses_ivf": n >= index_mod.IVF_MIN_ROWS, "nlist": None, "nprobe": None,
           "recall_at_10_brute": rerank_recall(brute_ids), "ms_per_query_brute": 1e3 * brute_t}
    if out["store_uses_ivf"]:
        nlist = ivf.default_nlist(n)
        pick = np.sort(rng.choice(n, size=min(n, ivf.VECTOR_SAMPLE_PER_LIST * nlist), replace=False))
        centroids = ivf.fit_vector_centroids(quant.decode(qv[pick]), nlist, seed=seed)
        lists = np.concatenate([ivf.assign_vectors(quant.decode(qv[s : s + 65536]), centroids)
                                for s in range(0, n, 65536)])
        space.set_partition(centroids, ids, lists)
        del lists
        nprobe = nprobe or ivf.default_nprobe(space.nlist, k=4 * c, n=space.n_alive)
        store_t = time_queries(lambda i: space.search_batch(qwords[i[0]], 4 * c, nprobe=nprobe,
                                                            query_vecs=queries[i[0]]),
                               one_by_one, 1, min_seconds=min_seconds)
        got_ids, got_d = space.search_batch(qwords, 4 * c, nprobe=nprobe, query_vecs=queries)
        out.update(nlist=space.nlist, nprobe=nprobe, recall_at_10_store=rerank_recall(got_ids),
                   hamming_recall=recall_tie_aware(got_ids, got_d, brute_d), ms_per_query_store=1e3 * store_t)
    else:  # below the IVF threshold the store scans every code
        out.update(recall_at_10_store=out["recall_at_10_brute"], hamming_recall=1.0,
                   ms_per_query_store=out["ms_per_query_brute"])
    out["loss"] = out["recall_at_10_brute"] - out["recall_at_10_store"]
    out["speedup"] = out["ms_per_query_brute"] / out["ms_per_query_store"]
    return out


# -- the trade-off on real vectors ---------------------------------------------------------

BITS_GRID = (64, 128, 256, 384)
CANDIDATES_GRID = (10, 25, 50, 100, 200, 400)


def tradeoff(
    corpus: np.ndarray,
    queries: np.ndarray,
    *,
    bits_grid=BITS_GRID,
    candidates_grid=CANDIDATES_GRID,
    k: int = 10,
    truth: np.ndarray | None = None,
) -> list[dict]:
    """Recall@k of the store's pipeline for each (bits, candidates), with bytes per passage.

    The pipeline is the store's: int8 quantization, ITQ codes fitted on the
    dequantized vectors, Hamming top 4·C, asymmetric top C, int8 cosine rerank.

    Args:
        corpus: float32 [n, dim] unit vectors of the passages.
        queries: float32 [m, dim] unit query vectors.
        bits_grid, candidates_grid: configurations to measure.
        k: recall@k.
        truth: int64 [m, k] true neighbours (default: exact float32 top-k of the corpus).

    Returns:
        Rows ``{"bits", "candidates", "recall", "ram_bytes", "disk_bytes"}``: RAM = code (padded
        to 8 bytes) + id + alive flag; disk = code + int8 vector.
    """
    from hashmem.memory import hashing, quantize

    corpus = np.asarray(corpus, dtype=np.float32)
    queries = np.asarray(queries, dtype=np.float32)
    if truth is None:
        truth = np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :k]
    quant = quantize.fit(corpus)
    qvecs = quant.encode(corpus)
    deq = quant.decode(qvecs)
    ids = np.arange(len(corpus), dtype=np.int64)
    rows = []
    for bits in bits_grid:
        if bits > corpus.shape[1]:
            continue
        rng = np.random.default_rng(0)
        sample = deq[rng.choice(len(deq), size=min(len(deq), 65536), replace=False)]
        hasher = hashing.fit("itq", sample, bits=bits)
        cols = np.ascontiguousarray(kernels.to_words(hasher.encode(deq)).T)
        qwords = kernels.to_words(hasher.encode(queries))
        proj = hasher.project(queries)  # [m, bits]
        signs = None
        for c in candidates_grid:
            cand, _ = kernels.hamming_topk(qwords, cols, ids, 4 * c, bits=bits, ids_sorted=True)
            if signs is None:
                signs = hashing.unpack_signs(hasher.encode(deq), bits)  # [n, bits] (asymmetric stage)
            hit = 0
            for qi in range(len(queries)):
                ci = cand[qi][cand[qi] >= 0]
                s = signs[ci] @ proj[qi]
                ci = ci[np.lexsort((ci, -s))[:c]]
                sc = quantize.cosine(queries[qi : qi + 1], qvecs[ci], quant)[0]
                top = ci[np.lexsort((ci, -sc))[:k]]
                hit += len(set(top.tolist()) & set(truth[qi].tolist()))
            rows.append({
                "bits": bits,
                "candidates": c,
                "recall": hit / (k * len(queries)),
                "ram_bytes": 8 * -(-bits // 64) + 8 + 1,
                "disk_bytes": bits // 8 + corpus.shape[1],
            })
    return rows


def plot_tradeoff(rows: list[dict], path, *, title: str = "") -> None:
    """A PNG: recall@10 against candidates (one line per code length) and against RAM bytes per passage."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plots need matplotlib: `pip install 'hashmem[bench]'`") from e
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for bits in sorted({r["bits"] for r in rows}):
        sel = [r for r in rows if r["bits"] == bits]
        label = f"{bits} bits ({sel[0]['ram_bytes']} B RAM, {sel[0]['disk_bytes']} B disk)"
        a.plot([r["candidates"] for r in sel], [r["recall"] for r in sel], marker="o", label=label)
    a.set_xscale("log")
    a.set_xlabel("candidates reranked with int8 (Hamming stage keeps 4x)")
    a.set_ylabel("recall@10 of float32 top-10")
    a.grid(alpha=0.3)
    a.legend(fontsize=8)
    for c in sorted({r["candidates"] for r in rows}):
        sel = sorted((r for r in rows if r["candidates"] == c), key=lambda r: r["ram_bytes"])
        b.plot([r["ram_bytes"] for r in sel], [r["recall"] for r in sel], marker="s", label=f"C = {c}")
    b.set_xlabel("RAM bytes per passage (code + id + flag)")
    b.set_ylabel("recall@10")
    b.grid(alpha=0.3)
    b.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
