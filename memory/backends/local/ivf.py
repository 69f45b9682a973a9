"""Inverted lists: fitting centroids and choosing the lists a query probes.

An IVF partitions the codes of a namespace into ``nlist`` lists, one per
centroid; a query scans only the ``nprobe`` lists whose centroids are nearest
to it. Two kinds of centroids:

- **Vector centroids** (what a store uses, see ``partition``): spherical k-means
  over the dequantized int8 vectors (``fit_vector_centroids``), each vector
  assigned to the centroid it scores highest with (``assign_vectors``); a query
  probes the lists whose centroids score highest with the query vector
  (``probe_vectors``), scored against int8-rounded centroids
  (``quantize_centroids``, a compiled kernel) because at 8,192 lists reading
  the centroids is the cost.
- **Binary centroids** (for callers with codes only): k-majority (Lloyd's
  k-means with the Hamming distance: each centroid bit is the majority bit of
  its members; ``fit_centroids``), everything computed from the codes in RAM.
  ``probe`` ranks lists by Hamming distance, or, given the query's real-valued
  projections (``Hasher.project``), by the asymmetric score (projections · the
  centroid's ±1 bits), which halves the end-to-end recall loss of Hamming
  ranking (docs/scale.md).

Why no hnswlib coarse quantizer: a query probes 256 lists, so an HNSW graph over
the centroids must return that many neighbours (ef >= 256). Measured
(``benchmarks/coarse_probe.py``, one thread, 256 of 2,048 / 8,192 lists): the
exact float probe 0.09 / 0.30 ms against hnswlib's 0.18 / 0.38 ms, and hnswlib
found only 0.985 / 0.774 of the exact lists; for binary centroids the popcount
probe 0.04 / 0.10 ms against 0.18 / 0.28 ms.

What it does not do: hold the codes (``rows``), lay them out by list
(``ivf_layout``) or answer queries (``index``), or store anything
(``partition``); it only fits centroids and probes them.
"""

from __future__ import annotations

import numpy as np

from ... import hashing
from ...kernels import topk as kernels

KMAJORITY_ITERATIONS = 8
SAMPLE_PER_LIST = 64


def default_nlist(n: int) -> int:
    """Lists for n codes: the power of two nearest to 2·sqrt(n), at least 16 (1M → 2048, 10M → 8192)."""
    return max(16, 1 << round(np.log2(2.0 * np.sqrt(max(n, 1)))))


PROBE_LISTS = 256


def default_nprobe(nlist: int, *, k: int = 0, n: int = 0) -> int:
    """Lists probed by default: 256 (all when fewer), and at least enough to hold 16·k rows on average.

    Measured in docs/scale.md with the store's lists (fitted on the vectors): recall@10 against
    float32 (SciFact among synthetic distractors) loses 0.0006 to brute force at 1M passages
    (2,048 lists) and 0.0046 at 10M (8,192 lists; 192 lists lose 0.0052 there); at 10M the 256
    lists find 0.967 of the exact Hamming top-400 10.6x faster than the scan. Recall follows the
    number of lists probed far more than the fraction, so the default is a count.
    """
    by_rows = -(-16 * k * nlist // n) if n else 0
    return min(nlist, max(PROBE_LISTS, by_rows))


def _majority(sample_rows: np.ndarray, assign: np.ndarray, nlist: int, bits: int, rng) -> np.ndarray:
    """New centroids uint64 [nlist, w]: per list the majority of each bit; empty lists get a random sample."""
    unpacked = np.unpackbits(sample_rows.view(np.uint8), axis=-1, count=bits)  # [m, bits]
    counts = np.bincount(assign, minlength=nlist)  # [nlist]
    sums = np.zeros((nlist, bits), dtype=np.int64)
    order = np.argsort(assign, kind="stable")
    present = np.flatnonzero(counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
    sums[present] = np.add.reduceat(unpacked[order], starts, axis=0, dtype=np.int64)
    major = (2 * sums > counts[:, None]).astype(np.uint8)  # [nlist, bits]
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        major[empty] = unpacked[rng.choice(len(unpacked), size=len(empty), replace=len(empty) > len(unpacked))]
    packed = np.packbits(major, axis=-1)
    return kernels.to_words(packed)


def fit_centroids(
    rows: np.ndarray,
    *,
    bits: int,
    nlist: int,
    iterations: int = KMAJORITY_ITERATIONS,
    seed: int = 0,
) -> np.ndarray:
    """k-majority centroids of sample codes.

    Args:
        rows: uint64 [m, w] row-major sample codes (m >= nlist).
        bits: code length.
        nlist: number of centroids.
        iterations: assignment / majority rounds.
        seed: seed of the initial centroids (a random subset of the sample).

    Returns:
        uint64 [nlist, w] centroid codes, row-major.
    """
    rows = np.ascontiguousarray(rows, dtype=np.uint64)
    if len(rows) < nlist:
        raise ValueError(f"k-majority needs at least nlist={nlist} sample codes, got {len(rows)}")
    rng = np.random.default_rng(seed)
    centroids = rows[np.sort(rng.choice(len(rows), size=nlist, replace=False))].copy()
    cols = np.ascontiguousarray(rows.T)
    for _ in range(iterations):
        assign = kernels.nearest_centroids(cols, centroids)
        centroids = _majority(rows, assign, nlist, bits, rng)
    return centroids


# -- vector partitions: spherical k-means over the stored (dequantized int8) vectors -------------

VECTOR_ITERATIONS = 6
VECTOR_SAMPLE_PER_LIST = 32


def fit_vector_centroids(x: np.ndarray, nlist: int, *, iterations: int = VECTOR_ITERATIONS,
                         seed: int = 0) -> np.ndarray:
    """Spherical k-means centroids float32 [nlist, dim] (unit rows) of sample vectors x [m, dim].

    Lloyd's iterations with the inner product: each vector goes to the centroid it scores
    highest with, each centroid becomes its members' normalized mean; an empty list takes a
    random sample vector. Cost: m · nlist · dim multiply-adds per iteration.
    """
    x = _unit(np.asarray(x, dtype=np.float32))
    if len(x) < nlist:
        raise ValueError(f"k-means needs at least nlist={nlist} sample vectors, got {len(x)}")
    rng = np.random.default_rng(seed)
    centroids = x[np.sort(rng.choice(len(x), size=nlist, replace=False))].copy()
    for _ in range(iterations):
        assign = assign_vectors(x, centroids)
        counts = np.bincount(assign, minlength=nlist)
        order = np.argsort(assign, kind="stable")
        present = np.flatnonzero(counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
        sums = np.zeros_like(centroids)
        sums[present] = np.add.reduceat(x[order], starts, axis=0)
        empty = np.flatnonzero(counts == 0)
        sums[empty] = x[rng.choice(len(x), size=len(empty), replace=len(empty) > len(x))]
        centroids = _unit(sums)
    return centroids


def assign_vectors(x: np.ndarray, centroids, *, chunk: int = 8192) -> np.ndarray:
    """int32 [n]: the centroid each vector of x [n, dim] scores highest with (ties: lowest index).

    ``centroids``: float32 [nlist, dim], or a ``quantize_centroids`` pair (scored as rounded)."""
    x = np.asarray(x, dtype=np.float32)
    out = np.empty(len(x), dtype=np.int32)
    if isinstance(centroids, tuple):
        rows, scales = centroids
        centroids = rows.astype(np.float32) * scales[:, None]
    ct = np.ascontiguousarray(centroids.T, dtype=np.float32)
    for s in range(0, len(x), chunk):
        out[s : s + chunk] = np.argmax(x[s : s + chunk] @ ct, axis=1)
    return out


def quantize_centroids(centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 [nlist, dim], scales float32 [nlist]): centroids rounded per row for fast probing."""
    scales = np.maximum(np.abs(centroids).max(axis=1), 1e-12) / 127.0
    return np.round(centroids / scales[:, None]).astype(np.int8), scales.astype(np.float32)


def probe_vectors(centroids, query: np.ndarray, nprobe: int, *, backend: kernels.Backend = "auto") -> np.ndarray:
    """The nprobe lists whose centroids score highest with a query vector, by (-score, list index).

    ``centroids``: float32 [nlist, dim], or ``quantize_centroids``' (int8, scales) pair, which
    scores in a third of the time at 8,192 lists (the product is memory-bound) and picks the same
    lists up to rounding (measured: 255 of the top 256 shared).
    """
    if isinstance(centroids, tuple):
        score = kernels.int8_scores(*centroids, query, backend=backend)
    else:
        score = centroids @ np.asarray(query, dtype=np.float32)
    n = len(score)
    nprobe = min(nprobe, n)
    if nprobe < n:  # the nprobe-th best score, then every list at or above it (ties kept for the sort)
        kth = np.partition(score, n - nprobe)[n - nprobe]
        cand = np.flatnonzero(score >= kth)
    else:
        cand = np.arange(n)
    return cand[np.lexsort((cand, -score[cand]))][:nprobe]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centroid_signs(centroids: np.ndarray, bits: int) -> np.ndarray:
    """The centroids' bits as ±1 float32 [nlist, bits], aligned with ``Hasher.project``'s dimensions."""
    return hashing.unpack_signs(kernels.from_words(centroids, -(-bits // 8)), bits).astype(np.float32)


def probe(centroids: np.ndarray, query: np.ndarray, nprobe: int, *, signs: np.ndarray | None = None,
          proj: np.ndarray | None = None) -> np.ndarray:
    """The nprobe lists nearest to a query, by (distance, list index).

    Args:
        centroids: uint64 [nlist, w] centroid codes.
        query: uint64 [w], the query's code.
        nprobe: lists to return.
        signs: ``centroid_signs(centroids, bits)``; with ``proj``, lists are ranked by
            the asymmetric score instead of the Hamming distance.
        proj: float [bits], the query's real-valued projections.
    """
    if signs is not None and proj is not None:
        d = -(signs @ np.asarray(proj, dtype=np.float32))  # higher score first
    else:
        d = np.zeros(len(centroids), dtype=np.int32)
        for w in range(centroids.shape[1]):
            d += np.bitwise_count(centroids[:, w] ^ query[w])
    nprobe = min(nprobe, len(centroids))
    if nprobe < len(centroids):
        kth = np.partition(d, nprobe - 1)[nprobe - 1]
        cand = np.flatnonzero(d <= kth)
    else:
        cand = np.arange(len(centroids))
    order = np.lexsort((cand, d[cand]))[:nprobe]
    return cand[order]
