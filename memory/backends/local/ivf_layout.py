"""The IVF layout of one namespace's rows: grouped by list, plus a tail of rows added since.

Where the lists come from: either a *vector partition* the caller sets
(``set_partition``: float centroids, each row's list given, new rows added with
their lists, queries probing with their vectors; ``Memory`` does this, see
``partition``), or binary centroids fitted here on the codes themselves (k-majority,
``ivf.fit_centroids``) once a namespace reaches ``ivf_min_rows``.

Layout: rows ``[0, main)`` are grouped by list (``offsets``), each list in id
order; rows ``[main, size)`` are the *tail*, appended since the last layout in id
order, each with its list (``tail_lists``); ``perm`` gives the rows in id order.
The layout is built, refreshed or refitted lazily (``refresh``, at the first
search after adds), so a bulk load (opening a store) lays the rows out once. The
tail is folded into the lists when it outgrows ``TAIL_FRACTION`` of the rows;
binary centroids are refitted when the namespace has grown
``CENTROIDS_REFIT_GROWTH``× since they were fitted (a vector partition is refitted
by its owner).

What it does not do: fit or probe centroids (``ivf``), decide when dead rows are
compacted or scan the lists (``index``), or persist lists (``partition``).
"""

from __future__ import annotations

import numpy as np

from ...kernels import topk as kernels
from . import ivf
from .rows import MIN_CAPACITY, NamespaceRows, release_freed_heap

__all__ = ["CENTROIDS_REFIT_GROWTH", "TAIL_FRACTION", "IvfLayout"]

TAIL_FRACTION = 0.125
CENTROIDS_REFIT_GROWTH = 4  # the in-RAM binary centroids are refitted once a namespace has grown this many times


class IvfLayout(NamespaceRows):
    """The rows of one namespace, grouped by IVF list once they are many (brute-force layout before).

    Args:
        n_words: uint64 words per code (``ceil(bits / 64)``).
        bits: code length.
        ivf_min_rows: live rows from which binary centroids are fitted (None: never).
        backend: kernel backend (``auto``, ``numba``, ``numpy``).
    """

    def __init__(self, n_words: int, bits: int, *, ivf_min_rows: int | None,
                 backend: kernels.Backend = "auto") -> None:
        super().__init__(n_words)
        self.bits = bits
        self.ivf_min_rows = ivf_min_rows
        self.backend = backend
        # IVF state (None / 0 in brute-force layout)
        self.centroids: np.ndarray | None = None  # uint64 [nlist, n_words]
        self.signs: np.ndarray | None = None  # float32 [nlist, bits]: centroids as ±1, for asymmetric probes
        # a vector partition (set by the caller, ``set_partition``) instead of binary centroids:
        # (int8 [nlist, dim], scales float32 [nlist]): the centroids of the stored vectors, rounded
        # (``ivf.quantize_centroids``; 1 byte per dimension: 0.8 MB at 2,048 lists of 384 dimensions)
        self.vectors: tuple[np.ndarray, np.ndarray] | None = None
        self.offsets: np.ndarray | None = None  # int64 [nlist + 1] into rows [0, main)
        self.main = 0
        self.tail_lists = np.zeros(0, dtype=np.int32)
        self.fitted_on = 0
        self._stale = False  # rows added since the layout was last checked

    @property
    def is_ivf(self) -> bool:
        return self.offsets is not None

    @property
    def nlist(self) -> int:
        return 0 if self.offsets is None else len(self.offsets) - 1

    def extend_tail(self, start: int, lists: np.ndarray | None) -> None:
        """Rows ``[start, size)`` were just appended: give them their lists (IVF layout) and mark the layout due.

        ``lists`` (int [n]): the rows' lists under a vector partition; binary centroids assign them here."""
        if self.is_ivf:
            if self.vectors is None:
                lists = kernels.nearest_centroids(self.cols, self.centroids, lo=start, hi=self.size,
                                                  backend=self.backend)
            self.tail_lists = np.concatenate([self.tail_lists, np.asarray(lists, dtype=np.int32)])
        self._stale = True  # the IVF is built / refreshed at the next search, not per batch

    def refresh(self) -> None:
        """Bring the layout up to date now (build, fold the tail into, or refit the IVF as due)."""
        if self._stale:
            layout = self.main, self.nlist
            self._maybe_relayout()
            if (self.main, self.nlist) != layout:
                release_freed_heap()  # the rebuild's temporaries are gone only now

    def _maybe_relayout(self) -> None:
        self._stale = False
        if self.vectors is not None:  # the caller fits and refits a vector partition; fold the tail only
            if self.size - self.main > TAIL_FRACTION * self.size:
                self.regroup(None, refit=False)
            return
        if self.ivf_min_rows is None:
            return
        if not self.is_ivf:
            if self.n_alive >= self.ivf_min_rows:
                self.build_ivf()
            return
        if self.n_alive >= CENTROIDS_REFIT_GROWTH * self.fitted_on:
            self.build_ivf()
        elif self.size - self.main > TAIL_FRACTION * self.size:
            self.regroup(self.centroids, refit=False)

    def build_ivf(self, *, nlist: int | None = None, seed: int = 0) -> None:
        """Fit centroids on (a sample of) the live codes and group the rows by list."""
        live_ids, words = self.live_rows()
        n = len(live_ids)
        nlist = ivf.default_nlist(n) if nlist is None else nlist
        nlist = max(1, min(nlist, n))
        rng = np.random.default_rng(seed)
        m = min(n, max(nlist, ivf.SAMPLE_PER_LIST * nlist))
        sample = words[np.sort(rng.choice(n, size=m, replace=False))]
        centroids = ivf.fit_centroids(sample, bits=self.bits, nlist=nlist, seed=seed)
        self.regroup(centroids, refit=True, live=(live_ids, words))

    def set_partition(self, vectors: np.ndarray, ids: np.ndarray, lists: np.ndarray) -> None:
        """Group the rows by a partition the caller computed from the stored vectors.

        Args:
            vectors: float32 [nlist, dim] centroids; queries probe the lists whose centroids
                have the largest inner product with the query vector. Kept rounded to int8.
            ids: int64 [n], every live id of the namespace (any order).
            lists: int [n], the list of each id (0 … nlist - 1).
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64)
        lists = np.asarray(lists, dtype=np.int32)
        live_ids, words = self.live_rows()
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        pos = np.clip(np.searchsorted(sorted_ids, live_ids), 0, max(len(ids) - 1, 0))
        if len(live_ids) and (len(ids) == 0 or not np.array_equal(sorted_ids[pos], live_ids)):
            raise ValueError("the partition must give the list of every live id")
        aligned = lists[order][pos] if len(live_ids) else np.zeros(0, np.int32)
        if len(aligned) and (aligned.min() < 0 or aligned.max() >= len(vectors)):
            raise ValueError(f"lists must lie in [0, {len(vectors)})")
        self.vectors = ivf.quantize_centroids(vectors)
        self.regroup(None, refit=True, live=(live_ids, words), lists=aligned, nlist=len(vectors))

    def regroup(self, centroids: np.ndarray | None, *, refit: bool, live=None, lists=None,
                nlist: int | None = None) -> None:
        """Rewrite the rows grouped by list (each list in id order); dead rows are dropped.

        Lists come from ``lists`` (aligned with the live rows in id order), else, with ``refit``
        or on a first layout, from the nearest binary centroid, else rows keep their lists."""
        live_ids, words = self.live_rows() if live is None else live
        n = len(live_ids)
        cols = np.ascontiguousarray(words.T)
        if lists is None and (refit or self.offsets is None):
            lists = kernels.nearest_centroids(cols, centroids, backend=self.backend)
        elif lists is None:
            # rows keep their lists: main rows by their offsets, tail rows by tail_lists
            old_rows = self.rows_in_id_order()
            old_rows = old_rows[self.alive[old_rows]]
            row_list = np.empty(self.size, dtype=np.int32)
            row_list[: self.main] = np.repeat(np.arange(self.nlist, dtype=np.int32), np.diff(self.offsets))
            row_list[self.main : self.size] = self.tail_lists
            lists = row_list[old_rows]
        order = np.lexsort((live_ids, lists))  # by list, then id
        nlist = nlist or (len(centroids) if centroids is not None else self.nlist)
        cap = max(MIN_CAPACITY, n + n // 8)
        self.cols = np.empty((self.n_words, cap), dtype=np.uint64)
        self.cols[:, :n] = cols[:, order]
        del cols
        self.ids = np.empty(cap, dtype=np.int64)
        self.ids[:n] = live_ids[order]
        self.alive = np.empty(cap, dtype=bool)
        self.alive[:n] = True
        self.perm = np.empty(cap, dtype=np.int32)
        self.perm[:n] = np.argsort(self.ids[:n], kind="stable")
        self.offsets = np.zeros(nlist + 1, dtype=np.int64)
        np.cumsum(np.bincount(lists, minlength=nlist), out=self.offsets[1:])
        self.centroids = centroids
        self.signs = None if centroids is None else ivf.centroid_signs(centroids, self.bits)
        self.main = self.size = self.n_alive = n
        self.tail_lists = np.zeros(0, dtype=np.int32)
        if refit:
            self.fitted_on = n
