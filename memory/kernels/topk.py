"""Hamming top-k kernels over column-major 64-bit code words: a numba path and a numpy fallback.

Layout: a code matrix is ``cols`` uint64 [n_words, n]: word w of every code in
one contiguous row (column-major codes), so the popcount loop runs over
consecutive words and vectorizes (AVX-512 ``vpopcntq`` where the CPU has it).
A packed uint8 code [bits / 8] becomes its words by zero padding to a multiple
of 8 bytes and viewing as native-endian uint64 (``to_words``); padding bits are
zero on both sides and never count. Queries are row-major uint64 [n_queries,
n_words].

Order: the k nearest are ordered by (distance, id); ties at the k-th distance
go to the smallest ids. Every backend gives exactly the same answer. Results
are ``(ids int64 [n_queries, k], dist int32 [n_queries, k])``; when fewer than k
rows qualify, the tail is padded with id ``-1`` and distance ``PAD_DISTANCE``.

Selection, not counting, is the costly part of a top-k scan, so the numba kernel
never sorts distances: each worker keeps a histogram of the distances it
accepted and the running bound D (the k-th smallest accepted distance), and
keeps only rows with distance <= D in a small buffer. Distances are small
integers (<= bits), so D only moves down and settles after a few thousand rows.

Backends:
- ``numba``: compiled, multithreaded (numba's threads; set ``NUMBA_NUM_THREADS``).
- ``numpy``: ``np.bitwise_count`` and ``np.argpartition``; no compiler needed.
- ``auto``: numba when importable, else numpy.

What it does not do: own the codes (``backends/local/rows``), choose lists (``ivf``).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Literal

import numpy as np

Backend = Literal["auto", "numba", "numpy"]
PAD_DISTANCE = np.iinfo(np.int32).max
_BLOCK = 512  # rows per block of the compiled scan (see _kernels_numba)
# below this many rows per thread, scan in the calling thread. Measured on a quiet 2-core machine
# (docs/scale.md): one query over 156k rows of IVF lists takes 0.42 ms serial, 0.27 ms on two
# threads; 1M codes 2.4 vs 1.4 ms. On a machine busy with other processes waking the pool can cost
# milliseconds (up to ~5 ms seen here), so small scans stay serial.
SERIAL_ROWS = 1 << 16


def to_words(codes: np.ndarray) -> np.ndarray:
    """Packed uint8 codes [n, nbytes] → uint64 [n, ceil(nbytes / 8)] (row-major), zero padded."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise ValueError(f"codes must be a 2-d uint8 array [n, nbytes], got shape {codes.shape}")
    n, nb = codes.shape
    words = -(-nb // 8)
    if nb != words * 8:
        padded = np.zeros((n, words * 8), dtype=np.uint8)
        padded[:, :nb] = codes
        codes = padded
    return codes.view(np.uint64).reshape(n, words)


def from_words(words: np.ndarray, nbytes: int) -> np.ndarray:
    """Row-major uint64 [n, w] → packed uint8 [n, nbytes] (drops the zero padding)."""
    words = np.ascontiguousarray(words, dtype=np.uint64)
    return words.view(np.uint8).reshape(len(words), -1)[:, :nbytes].copy()


# -- numpy reference path ------------------------------------------------------------------


def distances_numpy(cols: np.ndarray, query: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Hamming distances int32 [hi - lo] of one query uint64 [w] to rows lo:hi of cols [w, n]."""
    hi = cols.shape[1] if hi is None else hi
    out = np.zeros(hi - lo, dtype=np.int32)
    for w in range(cols.shape[0]):
        out += np.bitwise_count(cols[w, lo:hi] ^ query[w])
    return out


def select_topk(dist: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k entries smallest by (distance, id), in that order: (ids int64 [<=k], dist int32 [<=k])."""
    n = len(dist)
    if n > k:
        kth = np.partition(dist, k - 1)[k - 1]
        below = np.flatnonzero(dist < kth)
        at = np.flatnonzero(dist == kth)
        at = at[np.argsort(ids[at], kind="stable")[: k - len(below)]]
        pos = np.concatenate([below, at])
    else:
        pos = np.arange(n)
    order = np.lexsort((ids[pos], dist[pos]))
    pos = pos[order]
    return ids[pos].astype(np.int64), dist[pos].astype(np.int32)


def _topk_numpy(cols, ids, mask, queries, k, starts, ends, seg_ptr):
    nq = len(queries)
    out_ids = np.full((nq, k), -1, dtype=np.int64)
    out_d = np.full((nq, k), PAD_DISTANCE, dtype=np.int32)
    for q in range(nq):
        segs = range(seg_ptr[q], seg_ptr[q + 1])
        if not len(segs):
            continue
        d = np.concatenate([distances_numpy(cols, queries[q], starts[s], ends[s]) for s in segs])
        rows = np.concatenate([np.arange(starts[s], ends[s]) for s in segs])
        if mask is not None:
            keep = mask[rows]
            d, rows = d[keep], rows[keep]
        i, dd = select_topk(d, ids[rows], k)
        out_ids[q, : len(i)] = i
        out_d[q, : len(i)] = dd
    return out_ids, out_d


# -- compiled path -------------------------------------------------------------------------


_parallel_lock = threading.Lock()
SLOW_FIRST_CALL = 1.5  # seconds: a kernel's first call in a process that takes longer is being compiled
on_slow_compile: Callable[[], None] | None = None  # said once per process while a kernel compiles (the CLI's notice)
_announced = threading.Event()


def _announce() -> None:
    if on_slow_compile is not None and not _announced.is_set():
        _announced.set()
        on_slow_compile()


def _noticed(fn):
    """fn whose first call, if it takes over ``SLOW_FIRST_CALL`` s, calls ``on_slow_compile`` meanwhile.

    numba compiles a kernel at its first call in a process unless its machine code is cached
    (``cache=True``: the first process on a machine, ~20 s for one kernel on 2 cores); a search
    that says nothing for that long looks hung.
    """
    first = [True]

    def call(*args):
        if not first[0]:
            return fn(*args)
        timer = threading.Timer(SLOW_FIRST_CALL, _announce)
        timer.daemon = True
        timer.start()
        try:
            return fn(*args)
        finally:
            timer.cancel()
            first[0] = False

    return call


def _one_at_a_time_if_needed(fn):
    """A parallel kernel that waits its turn when numba runs on its ``workqueue`` threading layer.

    numba's OpenMP and TBB layers accept parallel kernels launched from several Python threads
    at once; the workqueue layer (used when neither is available) aborts the process instead. So
    under workqueue (or before numba has picked a layer) launches are serialized by a lock.
    """
    import numba as nb

    def call(*args):
        try:
            layer = nb.threading_layer()
        except ValueError:  # no parallel kernel has run yet: the layer is not chosen
            layer = None
        if layer in ("omp", "tbb"):
            return fn(*args)
        with _parallel_lock:
            return fn(*args)

    return call


@functools.cache
def _numba_kernels():
    """The compiled kernels (module ``_kernels_numba``; compiled once per machine, then cached)."""
    import numba as nb

    from . import compiled as m

    def guard(fn):
        return _noticed(_one_at_a_time_if_needed(fn))

    return {
        "topk_segments": guard(m.topk_segments),
        "topk_segments_serial": _noticed(m.topk_segments_serial),
        "topk_blocked": guard(m.topk_blocked),
        "nearest_centroid": guard(m.nearest_centroid),
        "int8_scores": _noticed(m.int8_scores),
        "int8_scores_parallel": guard(m.int8_scores_parallel),
        "merge_parts": _noticed(m.merge_parts),
        "num_threads": nb.get_num_threads(),
    }


@functools.cache
def numba_available() -> bool:
    """Whether the compiled path can be used (numba importable and not disabled)."""
    if os.environ.get("HASHMEM_KERNEL", "").lower() == "numpy":
        return False
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: Backend) -> str:
    """The backend ``auto`` stands for here: ``numba`` when available, else ``numpy``."""
    if backend == "auto":
        return "numba" if numba_available() else "numpy"
    if backend == "numba":
        if not numba_available():
            raise ImportError("the numba kernel needs numba: `pip install 'hashmem[fast]'` or numba>=0.60")
        return "numba"
    if backend == "numpy":
        return "numpy"
    raise ValueError(f"kernel backend {backend!r} is not supported; use auto, numba or numpy")


def _check(cols, ids, mask, queries, k):
    if cols.dtype != np.uint64 or cols.ndim != 2:
        raise ValueError(f"cols must be uint64 [n_words, n], got {cols.dtype} {cols.shape}")
    if queries.dtype != np.uint64 or queries.ndim != 2 or queries.shape[1] != cols.shape[0]:
        raise ValueError(f"queries must be uint64 [n_queries, {cols.shape[0]}], got {queries.dtype} {queries.shape}")
    if ids.shape != (cols.shape[1],):
        raise ValueError(f"ids must have shape ({cols.shape[1]},), got {ids.shape}")
    if mask is not None and mask.shape != (cols.shape[1],):
        raise ValueError(f"mask must have shape ({cols.shape[1]},), got {mask.shape}")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")


def hamming_topk(
    queries: np.ndarray,
    cols: np.ndarray,
    ids: np.ndarray,
    k: int,
    *,
    bits: int,
    mask: np.ndarray | None = None,
    lo: int = 0,
    hi: int | None = None,
    ids_sorted: bool = False,
    backend: Backend = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by Hamming distance over rows lo:hi, ties by id.

    Args:
        queries: uint64 [n_queries, n_words] (row-major query words, see ``to_words``).
        cols: uint64 [n_words, n] column-major code words.
        ids: int64 [n] non-negative record ids of the rows.
        k: how many to return per query.
        bits: code length (an upper bound of every distance).
        mask: optional bool [n]; rows where it is False are skipped.
        lo, hi: the row range to scan (default: all).
        ids_sorted: the ids increase with the row (a promise that lets ties be settled early;
            a wrong promise gives wrong ties).
        backend: ``auto``, ``numba`` or ``numpy``.

    Returns:
        (ids int64 [n_queries, k], dist int32 [n_queries, k]) ordered by (dist, id),
        padded with -1 / ``PAD_DISTANCE``.
    """
    hi = cols.shape[1] if hi is None else hi
    _check(cols, ids, mask, queries, k)
    nq = len(queries)
    if resolve_backend(backend) == "numpy" or nq == 0:
        ptr = np.arange(nq + 1, dtype=np.int64)
        return _topk_numpy(cols, ids, mask, queries, k, np.full(nq, lo), np.full(nq, hi), ptr)
    kern = _numba_kernels()
    threads = kern["num_threads"]
    m = mask if mask is not None else np.ones(1, dtype=np.bool_)
    if nq >= threads:
        return kern["topk_blocked"](cols, ids, m, mask is not None, ids_sorted, queries, k, bits, lo, hi, threads)
    parts = max(1, min(threads // nq, (hi - lo) // SERIAL_ROWS))
    ptr = np.arange(nq + 1, dtype=np.int64)
    seg = (np.full(nq, lo, np.int64), np.full(nq, hi, np.int64), ptr)
    if parts == 1:
        pi, pd = kern["topk_segments_serial"](cols, ids, m, mask is not None, ids_sorted, queries, k, bits, *seg)
    else:
        pi, pd = kern["topk_segments"](cols, ids, m, mask is not None, ids_sorted, queries, k, bits, *seg, parts)
    return _merge_parts(pi, pd, k)


def hamming_topk_segments(
    queries: np.ndarray,
    cols: np.ndarray,
    ids: np.ndarray,
    k: int,
    *,
    bits: int,
    starts: np.ndarray,
    ends: np.ndarray,
    seg_ptr: np.ndarray,
    mask: np.ndarray | None = None,
    backend: Backend = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of each query over its own row segments (the lists an IVF probes).

    Args:
        queries, cols, ids, k, bits, mask, backend: as in ``hamming_topk``.
        starts, ends: int64 [n_segments] row ranges ``starts[s]:ends[s]``.
        seg_ptr: int64 [n_queries + 1]; query q scans segments ``seg_ptr[q]:seg_ptr[q + 1]``.

    Returns:
        As ``hamming_topk``.
    """
    _check(cols, ids, mask, queries, k)
    nq = len(queries)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    seg_ptr = np.ascontiguousarray(seg_ptr, dtype=np.int64)
    if len(seg_ptr) != nq + 1:
        raise ValueError(f"seg_ptr must have n_queries + 1 = {nq + 1} entries, got {len(seg_ptr)}")
    if resolve_backend(backend) == "numpy" or nq == 0:
        return _topk_numpy(cols, ids, mask, queries, k, starts, ends, seg_ptr)
    kern = _numba_kernels()
    threads = kern["num_threads"]
    rows = int((ends - starts).sum())
    m = mask if mask is not None else np.ones(1, dtype=np.bool_)
    if rows < SERIAL_ROWS * max(nq, threads):
        pi, pd = kern["topk_segments_serial"](cols, ids, m, mask is not None, False, queries, k, bits, starts, ends,
                                              seg_ptr)
        return _merge_parts(pi, pd, k)
    parts = 1 if nq >= threads else max(1, min(threads // nq, rows // (nq * SERIAL_ROWS)))
    pi, pd = kern["topk_segments"](cols, ids, m, mask is not None, False, queries, k, bits, starts, ends, seg_ptr,
                                   parts)
    return _merge_parts(pi, pd, k)


def _merge_parts(pi: np.ndarray, pd: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """[nq, parts, k] per-part results → [nq, k] by (dist, id)."""
    nq, parts, _ = pi.shape
    if parts == 1:
        return pi[:, 0], pd[:, 0]
    if numba_available():  # parts come sorted: a k-way merge, not a sort of parts * k entries
        return _numba_kernels()["merge_parts"](pi, pd, k)
    fi = pi.reshape(nq, parts * k)
    fd = pd.reshape(nq, parts * k)
    # padding (-1, PAD) must sort last: key on (dist, id) with -1 ids only at PAD distance
    order = np.lexsort((np.where(fi < 0, np.iinfo(np.int64).max, fi), fd), axis=-1)[:, :k]
    return np.take_along_axis(fi, order, axis=1), np.take_along_axis(fd, order, axis=1)


def int8_scores(rows: np.ndarray, scales: np.ndarray, query: np.ndarray, *, backend: Backend = "auto") -> np.ndarray:
    """float32 [n]: ``scales[j] * (rows[j] . query)`` for int8 rows [n, dim] and a float query [dim].

    The compiled path reads a quarter of the bytes a float32 product would (what probing 8,192 IVF
    centroids costs is reading them); the numpy path converts and multiplies. Both sum in float32
    but in different orders, so they agree to rounding, not bit for bit.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int8)
    query = np.ascontiguousarray(query, dtype=np.float32)
    scales = np.ascontiguousarray(scales, dtype=np.float32)
    if resolve_backend(backend) == "numba":
        out = np.empty(len(rows), dtype=np.float32)
        kern = _numba_kernels()
        # 8,192 centroids take ~0.13 ms on one thread: worth the pool from 4,096 rows per thread
        fn = kern["int8_scores_parallel"] if len(rows) >= 4096 * kern["num_threads"] > 4096 else kern["int8_scores"]
        fn(rows, scales, query, out)
        return out
    return (rows.astype(np.float32) @ query) * scales


def nearest_centroids(
    cols: np.ndarray,
    centroids: np.ndarray,
    *,
    lo: int = 0,
    hi: int | None = None,
    backend: Backend = "auto",
) -> np.ndarray:
    """Index int32 [hi - lo] of the nearest centroid (row-major uint64 [c, w]) of each row; ties → lowest index."""
    hi = cols.shape[1] if hi is None else hi
    centroids = np.ascontiguousarray(centroids, dtype=np.uint64)
    out = np.empty(hi - lo, dtype=np.int32)
    if hi <= lo:
        return out
    if resolve_backend(backend) == "numba":
        _numba_kernels()["nearest_centroid"](cols, centroids, lo, hi, out)
        return out
    best = np.full(hi - lo, np.iinfo(np.int32).max, dtype=np.int32)
    for j in range(len(centroids)):
        d = distances_numpy(cols, centroids[j], lo, hi)
        better = d < best
        best[better] = d[better]
        out[better] = j
    return out
