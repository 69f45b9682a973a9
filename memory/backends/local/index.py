"""In-memory Hamming top-C over the binary codes of each namespace: brute force, or IVF when large.

Memory layout of one namespace (``NamespaceIndex``), per row:

- ``cols`` uint64 [n_words, capacity]: the codes, column-major (word w of every
  code contiguous; see ``kernels``): bits / 8 bytes per passage, padded to 8.
- ``ids`` int64 [capacity]: the record id of each row (8 bytes).
- ``alive`` bool [capacity]: False once deleted (1 byte).
- only with an IVF: ``perm`` int32 [capacity], the rows in increasing id order (4 bytes).

No per-id Python dict: rows are appended in increasing id order (SQLite
AUTOINCREMENT ids), so in brute-force layout ``ids`` is sorted and an id's row
is ``searchsorted(ids, id)``; in IVF layout ``searchsorted(ids, id, sorter=perm)``.
Spare capacity is allocated with ``np.empty`` and never touched, so it costs
address space but no resident memory. The IVF is built, refreshed or refitted
lazily, at the first search after adds, so a bulk load (opening a store) lays the
rows out once.

Where the lists come from: either a *vector partition* the caller sets
(``set_partition``: float centroids, each row's list given, new rows added with
their lists, queries probing with their vectors; ``Memory`` does this, see
``partition``), or binary centroids the index fits on the codes itself (k-majority,
``ivf.fit_centroids``) once a namespace reaches ``ivf_min_rows``.

IVF layout (above ``IVF_MIN_ROWS`` live rows): rows ``[0, main)`` are grouped
by list (``offsets``), each list in id order; rows ``[main, size)`` are the
*tail*, appended since the last layout in id order, each with its list
(``tail_lists``). A query scans its ``nprobe`` nearest lists plus the whole tail.
The tail is folded into the lists when it outgrows ``TAIL_FRACTION`` of the
rows; binary centroids are refitted when the namespace has grown ``CENTROIDS_REFIT_GROWTH``×
since they were fitted (a vector partition is refitted by its owner). A delete clears ``alive``; more than half dead rows trigger a
compaction. ``nprobe >= nlist`` (or ``exact=True``) gives exactly the brute-force
result.

Ties: candidates are ordered by (distance, record id), so the same store and
query always give the same candidates.

What it does not do: rerank (``store.py`` with ``quantize.py``) or persist.
"""

from __future__ import annotations

import numpy as np

from ...kernels import topk as kernels
from ...kernels.topk import from_words, to_words
from . import ivf

__all__ = ["HammingIndex", "NamespaceIndex", "from_words", "to_words"]

IVF_MIN_ROWS = 200_000
TAIL_FRACTION = 0.125
CENTROIDS_REFIT_GROWTH = 4  # the in-RAM binary centroids are refitted once a namespace has grown this many times
_MIN_CAPACITY = 1024


def release_freed_heap() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``) after a layout's big temporaries.

    Arrays below glibc's mmap threshold (which grows to 32 MiB) are freed into the heap and stay
    resident; a rebuild frees several. No-op where glibc is absent.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class NamespaceIndex:
    """Codes and ids of one namespace, append-only with tombstones.

    Args:
        n_words: uint64 words per code (``ceil(bits / 64)``).
        bits: code length.
        ivf_min_rows: live rows from which the IVF layout is used (None: never; -1:
            ``IVF_MIN_ROWS`` as it is when the index is made).
        backend: kernel backend (``auto``, ``numba``, ``numpy``).
    """

    def __init__(self, n_words: int, bits: int | None = None, *, ivf_min_rows: int | None = -1,
                 backend: kernels.Backend = "auto") -> None:
        ivf_min_rows = IVF_MIN_ROWS if ivf_min_rows == -1 else ivf_min_rows
        self.n_words = n_words
        self.bits = bits if bits is not None else 64 * n_words
        self.ivf_min_rows = ivf_min_rows
        self.backend = backend
        self.cols = np.zeros((n_words, 0), dtype=np.uint64)
        self.ids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.size = 0  # rows used
        self.n_alive = 0
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
        self.perm: np.ndarray | None = None  # int32 [capacity]: rows in id order
        self.fitted_on = 0
        self._stale = False  # rows added since the layout was last checked

    # -- layout ------------------------------------------------------------------------

    @property
    def is_ivf(self) -> bool:
        return self.offsets is not None

    @property
    def nlist(self) -> int:
        return 0 if self.offsets is None else len(self.offsets) - 1

    def _grow(self, need: int) -> None:
        cap = self.cols.shape[1]
        if need <= cap:
            return
        cap = max(_MIN_CAPACITY, need + need // 2)
        # np.empty, not np.zeros: rows past `size` are never read, and untouched pages cost no RSS
        # (calloc would zero recycled heap pages and make the spare capacity resident)
        cols = np.empty((self.n_words, cap), dtype=np.uint64)
        cols[:, : self.size] = self.cols[:, : self.size]
        ids = np.empty(cap, dtype=np.int64)
        ids[: self.size] = self.ids[: self.size]
        alive = np.empty(cap, dtype=bool)
        alive[: self.size] = self.alive[: self.size]
        self.cols, self.ids, self.alive = cols, ids, alive
        if self.perm is not None:
            perm = np.empty(cap, dtype=np.int32)
            perm[: self.size] = self.perm[: self.size]
            self.perm = perm
        release_freed_heap()

    def add(self, ids: np.ndarray, code_words: np.ndarray, lists: np.ndarray | None = None) -> None:
        """Append rows: ids int64 [n] (increasing, above every id present), code_words uint64 [n, w].

        ``lists`` (int [n]) gives each row's list; required once a vector partition is set
        (``set_partition``), ignored otherwise (binary centroids assign rows themselves)."""
        ids = np.asarray(ids, dtype=np.int64)
        code_words = np.asarray(code_words, dtype=np.uint64)
        n = len(ids)
        if n == 0:
            return
        if code_words.shape != (n, self.n_words):
            raise ValueError(f"code words must have shape ({n}, {self.n_words}), got {code_words.shape}")
        if ids.min() < 0:
            raise ValueError("record ids must be non-negative")
        if self.vectors is not None and (lists is None or len(lists) != n):
            raise ValueError("a namespace with a vector partition needs the list of every new row")
        last = self._max_id()
        if np.any(np.diff(ids) <= 0) or (last is not None and ids[0] <= last):
            if self.vectors is not None:
                raise ValueError("ids must increase in a namespace with a vector partition")
            self._add_unordered(ids, code_words)
            return
        self._grow(self.size + n)
        s = self.size
        self.cols[:, s : s + n] = code_words.T
        self.ids[s : s + n] = ids
        self.alive[s : s + n] = True
        if self.is_ivf:
            self.perm[s : s + n] = np.arange(s, s + n, dtype=np.int32)
            if self.vectors is None:
                lists = kernels.nearest_centroids(self.cols, self.centroids, lo=s, hi=s + n, backend=self.backend)
            self.tail_lists = np.concatenate([self.tail_lists, np.asarray(lists, dtype=np.int32)])
        self.size += n
        self.n_alive += n
        self._stale = True  # the IVF is built / refreshed at the next search, not per batch

    def _max_id(self) -> int | None:
        if self.size == 0:
            return None
        if self.perm is not None:
            return int(self.ids[self.perm[self.size - 1]])
        return int(self.ids[self.size - 1])

    def _add_unordered(self, ids: np.ndarray, code_words: np.ndarray) -> None:
        """Ids out of order or already present: rebuild the whole namespace (rare; O(n))."""
        old_ids, old_words = self._live_rows()
        all_ids = np.concatenate([old_ids, ids])
        all_words = np.concatenate([old_words, code_words])
        order = np.argsort(all_ids, kind="stable")
        all_ids, all_words = all_ids[order], all_words[order]
        keep = np.ones(len(all_ids), dtype=bool)
        keep[:-1] = all_ids[1:] != all_ids[:-1]  # a re-added id: the last code wins
        self._reset()
        self.add(all_ids[keep], all_words[keep])

    def _reset(self) -> None:
        self.__init__(self.n_words, self.bits, ivf_min_rows=self.ivf_min_rows, backend=self.backend)

    def _live_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 [n_alive], code words uint64 [n_alive, w]) of live rows, in id order."""
        rows = self._rows_in_id_order()
        rows = rows[self.alive[rows]]
        return self.ids[rows].copy(), np.ascontiguousarray(self.cols[:, rows].T)

    def _rows_in_id_order(self) -> np.ndarray:
        if self.perm is not None:
            return self.perm[: self.size].astype(np.int64)
        return np.arange(self.size)

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
                self._layout(None, refit=False)
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
            self._layout(self.centroids, refit=False)

    def build_ivf(self, *, nlist: int | None = None, seed: int = 0) -> None:
        """Fit centroids on (a sample of) the live codes and group the rows by list."""
        live_ids, words = self._live_rows()
        n = len(live_ids)
        nlist = ivf.default_nlist(n) if nlist is None else nlist
        nlist = max(1, min(nlist, n))
        rng = np.random.default_rng(seed)
        m = min(n, max(nlist, ivf.SAMPLE_PER_LIST * nlist))
        sample = words[np.sort(rng.choice(n, size=m, replace=False))]
        centroids = ivf.fit_centroids(sample, bits=self.bits, nlist=nlist, seed=seed)
        self._layout(centroids, refit=True, live=(live_ids, words))

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
        live_ids, words = self._live_rows()
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        pos = np.clip(np.searchsorted(sorted_ids, live_ids), 0, max(len(ids) - 1, 0))
        if len(live_ids) and (len(ids) == 0 or not np.array_equal(sorted_ids[pos], live_ids)):
            raise ValueError("the partition must give the list of every live id")
        aligned = lists[order][pos] if len(live_ids) else np.zeros(0, np.int32)
        if len(aligned) and (aligned.min() < 0 or aligned.max() >= len(vectors)):
            raise ValueError(f"lists must lie in [0, {len(vectors)})")
        self.vectors = ivf.quantize_centroids(vectors)
        self._layout(None, refit=True, live=(live_ids, words), lists=aligned, nlist=len(vectors))

    def _layout(self, centroids: np.ndarray | None, *, refit: bool, live=None, lists=None,
                nlist: int | None = None) -> None:
        """Rewrite the rows grouped by list (each list in id order); dead rows are dropped.

        Lists come from ``lists`` (aligned with the live rows in id order), else, with ``refit``
        or on a first layout, from the nearest binary centroid, else rows keep their lists."""
        live_ids, words = self._live_rows() if live is None else live
        n = len(live_ids)
        cols = np.ascontiguousarray(words.T)
        if lists is None and (refit or self.offsets is None):
            lists = kernels.nearest_centroids(cols, centroids, backend=self.backend)
        elif lists is None:
            # rows keep their lists: main rows by their offsets, tail rows by tail_lists
            old_rows = self._rows_in_id_order()
            old_rows = old_rows[self.alive[old_rows]]
            row_list = np.empty(self.size, dtype=np.int32)
            row_list[: self.main] = np.repeat(np.arange(self.nlist, dtype=np.int32), np.diff(self.offsets))
            row_list[self.main : self.size] = self.tail_lists
            lists = row_list[old_rows]
        order = np.lexsort((live_ids, lists))  # by list, then id
        nlist = nlist or (len(centroids) if centroids is not None else self.nlist)
        cap = max(_MIN_CAPACITY, n + n // 8)
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

    # -- lookups -----------------------------------------------------------------------

    def rows_of(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(rows int64 [m], found bool [m]) of record ids; a row is only meaningful where found."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if self.size == 0:
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        if self.perm is not None:
            # bisection over the int32 permutation: np.searchsorted(sorter=) would first copy
            # the whole permutation to intp (8 MB per lookup at 1M rows)
            sorter = self.perm[: self.size]
            lo = np.zeros(len(ids), dtype=np.int64)
            hi = np.full(len(ids), self.size, dtype=np.int64)
            while True:
                active = lo < hi
                if not active.any():
                    break
                mid = (lo + hi) // 2
                below = active & (self.ids[sorter[np.minimum(mid, self.size - 1)]] < ids)
                lo = np.where(below, mid + 1, lo)
                hi = np.where(active & ~below, mid, hi)
            rows = sorter[np.minimum(lo, self.size - 1)].astype(np.int64)
        else:
            rows = np.minimum(np.searchsorted(self.ids[: self.size], ids), self.size - 1)
        found = (self.ids[rows] == ids) & self.alive[rows]
        return rows, found

    def remove(self, ids) -> int:
        rows, found = self.rows_of(ids)
        rows = np.unique(rows[found])
        self.alive[rows] = False
        self.n_alive -= len(rows)
        if self.size > _MIN_CAPACITY and self.n_alive < self.size // 2:
            self._compact()
        return len(rows)

    def _compact(self) -> None:
        if self.is_ivf:
            self._layout(self.centroids, refit=False)
        else:
            live_ids, words = self._live_rows()
            self._reset()
            self.add(live_ids, words)
        release_freed_heap()

    def replace_all(self, ids: np.ndarray, code_words: np.ndarray) -> None:
        self._reset()
        self.add(ids, code_words)

    def live_ids(self) -> np.ndarray:
        """Ids of live rows, in increasing id order."""
        rows = self._rows_in_id_order()
        return self.ids[rows[self.alive[rows]]]

    def codes_of(self, ids) -> np.ndarray:
        """Packed uint8 codes [len(ids), words * 8] of live ids (padding bytes included)."""
        rows, found = self.rows_of(ids)
        if not found.all():
            missing = np.asarray(ids, dtype=np.int64).reshape(-1)[~found][:5].tolist()
            raise KeyError(f"ids not in this namespace: {missing}")
        return np.ascontiguousarray(self.cols[:, rows].T).view(np.uint8)

    def mask_for(self, ids) -> np.ndarray:
        """bool [size]: True at the rows of the given (live) ids."""
        m = np.zeros(self.size, dtype=bool)
        rows, found = self.rows_of(ids)
        m[rows[found]] = True
        return m

    # -- search ------------------------------------------------------------------------

    def search_batch(self, query_words: np.ndarray, k: int, *, allowed: np.ndarray | None = None,
                     nprobe: int | None = None, exact: bool = False,
                     query_proj: np.ndarray | None = None,
                     query_vecs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest live rows of queries uint64 [q, w]: (ids int64 [q, k], dist int32 [q, k]), padded with -1.

        Args:
            query_words: uint64 [n_queries, n_words].
            k: candidates per query.
            allowed: optional bool mask [size] that further restricts rows (a
                filtered search; always scanned exhaustively).
            nprobe: IVF lists probed (default ``ivf.default_nprobe`` for this k and size).
            exact: scan every row even with an IVF.
            query_proj: optional float [q, bits], the queries' real-valued projections: IVF
                lists are then probed by asymmetric score (``ivf.probe``).
            query_vecs: float [q, dim], the query vectors; a vector partition probes with
                them (without them it scans every row).
        """
        query_words = np.ascontiguousarray(query_words, dtype=np.uint64)
        self.refresh()
        # full-capacity arrays (C-contiguous for the kernels) with the scan limited to [0, size)
        cols, ids = self.cols, self.ids
        mask = None
        if self.n_alive < self.size:
            mask = self.alive
        if allowed is not None:
            mask = np.zeros(len(ids), dtype=bool)
            mask[: self.size] = allowed & self.alive[: self.size]
        if not self.is_ivf or exact or allowed is not None or (self.vectors is not None and query_vecs is None):
            return kernels.hamming_topk(query_words, cols, ids, k, bits=self.bits, mask=mask, hi=self.size,
                                        ids_sorted=self.perm is None, backend=self.backend)
        nprobe = ivf.default_nprobe(self.nlist, k=k, n=self.n_alive) if nprobe is None else nprobe
        starts, ends, ptr = [], [], [0]
        for qi, q in enumerate(query_words):
            if self.vectors is not None:
                # best lists first, alternating between the two halves a two-thread scan splits the
                # rows into: each thread meets close codes early, so its bound tightens soon
                ranked = ivf.probe_vectors(self.vectors, query_vecs[qi], nprobe, backend=self.backend)
                lists = np.concatenate([ranked[0::2], ranked[1::2]])
            else:
                proj = None if query_proj is None else query_proj[qi]
                lists = np.sort(ivf.probe(self.centroids, q, nprobe, signs=self.signs, proj=proj))
            starts.append(self.offsets[lists])
            ends.append(self.offsets[lists + 1])
            if self.size > self.main:
                starts.append(np.array([self.main]))
                ends.append(np.array([self.size]))
            ptr.append(ptr[-1] + len(lists) + (self.size > self.main))
        return kernels.hamming_topk_segments(
            query_words, cols, ids, k, bits=self.bits, starts=np.concatenate(starts), ends=np.concatenate(ends),
            seg_ptr=np.asarray(ptr, dtype=np.int64), mask=mask, backend=self.backend,
        )

    def search(self, query_words: np.ndarray, k: int, *, allowed: np.ndarray | None = None,
               nprobe: int | None = None, exact: bool = False, query_proj: np.ndarray | None = None,
               query_vec: np.ndarray | None = None):
        """(ids int64 [<=k], distances uint32 [<=k]) of the nearest live codes to one query uint64 [w]."""
        ids, dist = self.search_batch(np.asarray(query_words)[None, :], k, allowed=allowed, nprobe=nprobe,
                                      exact=exact, query_proj=None if query_proj is None else query_proj[None, :],
                                      query_vecs=None if query_vec is None else np.asarray(query_vec)[None, :])
        keep = ids[0] >= 0
        return ids[0][keep], dist[0][keep].astype(np.uint32)

    def nbytes(self) -> int:
        """Bytes of the arrays' used rows (what a row costs in RAM, without spare capacity)."""
        per_row = 8 * self.n_words + 8 + 1 + (4 if self.perm is not None else 0)
        extra = 0
        if self.is_ivf:
            extra = self.offsets.nbytes + self.tail_lists.nbytes + sum(
                a.nbytes for a in (self.centroids, self.signs, *(self.vectors or ())) if a is not None)
        return per_row * self.size + extra


class HammingIndex:
    """Namespace → NamespaceIndex. Namespaces are hard partitions.

    Args:
        bits: code length.
        ivf_min_rows: live rows of a namespace from which its IVF is built (None: never; -1:
            ``IVF_MIN_ROWS``).
        nprobe: IVF lists a query probes (None: ``ivf.default_nprobe``).
        backend: kernel backend (``auto``: numba when installed, else numpy).
    """

    def __init__(self, bits: int, *, ivf_min_rows: int | None = -1, nprobe: int | None = None,
                 backend: kernels.Backend = "auto") -> None:
        self.bits = bits
        self.n_words = -(-bits // 64)
        self.ivf_min_rows = IVF_MIN_ROWS if ivf_min_rows == -1 else ivf_min_rows
        self.nprobe = nprobe
        self.backend = backend
        self.spaces: dict[str, NamespaceIndex] = {}

    def __len__(self) -> int:
        return sum(s.n_alive for s in self.spaces.values())

    def add(self, namespace: str, ids, codes: np.ndarray, lists=None) -> None:
        """Add packed uint8 codes [n, bits / 8] with their ids (increasing) to a namespace.

        ``lists``: each row's list, for a namespace with a vector partition (``set_partition``)."""
        space = self.spaces.get(namespace)
        if space is None:
            space = self.spaces[namespace] = NamespaceIndex(
                self.n_words, self.bits, ivf_min_rows=self.ivf_min_rows, backend=self.backend
            )
        space.add(np.asarray(ids, dtype=np.int64), to_words(codes), lists)

    def set_partition(self, namespace: str, vectors: np.ndarray, ids, lists) -> None:
        """Give a namespace a vector partition (``NamespaceIndex.set_partition``)."""
        self.spaces[namespace].set_partition(vectors, ids, lists)

    def remove(self, namespace: str, ids) -> None:
        if namespace in self.spaces:
            self.spaces[namespace].remove(ids)

    def refresh(self) -> None:
        """Lay every namespace out now (IVF build / fold-in), e.g. once after a bulk load."""
        for space in self.spaces.values():
            space.refresh()

    def search(self, namespace: str, query_code: np.ndarray, k: int, *, allowed_ids=None,
               nprobe: int | None = None, exact: bool = False, query_proj: np.ndarray | None = None,
               query_vec: np.ndarray | None = None):
        """Nearest ids and Hamming distances in one namespace; empty for an unknown one.

        ``query_vec`` (float [dim]) is what a vector partition probes with; ``query_proj``
        (float [bits], the query's ``Hasher.project``) makes binary centroids be probed by
        asymmetric score."""
        space = self.spaces.get(namespace)
        if space is None or space.n_alive == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
        qw = to_words(np.asarray(query_code)[None, :])[0]
        allowed = None if allowed_ids is None else space.mask_for(allowed_ids)
        return space.search(qw, k, allowed=allowed, nprobe=self.nprobe if nprobe is None else nprobe, exact=exact,
                            query_proj=query_proj, query_vec=query_vec)
