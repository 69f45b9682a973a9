"""In-memory Hamming top-C over the binary codes of each namespace: brute force, or IVF when large.

One namespace (``NamespaceIndex``) is its rows (``rows``: column-major codes, ids,
tombstones) laid out by IVF list once it has ``IVF_MIN_ROWS`` live rows
(``ivf_layout``: lists from a vector partition the caller sets, or from binary
centroids fitted on the codes). This module adds rows, deletes them, and answers
queries: a brute-force scan of every live row, or, in IVF layout, a scan of the
query's ``nprobe`` nearest lists plus the whole tail. A filtered search
(``allowed``), ``exact=True`` or ``nprobe >= nlist`` gives exactly the
brute-force result. A delete clears ``alive``; more than half dead rows trigger
a compaction.

Ties: candidates are ordered by (distance, record id), so the same store and
query always give the same candidates.

What it does not do: rerank (``store.py`` with ``quantize.py``) or persist.
"""

from __future__ import annotations

import numpy as np

from ...kernels import topk as kernels
from ...kernels.topk import from_words, to_words
from . import ivf
from .ivf_layout import IvfLayout
from .rows import MIN_CAPACITY, release_freed_heap

__all__ = ["HammingIndex", "NamespaceIndex", "from_words", "release_freed_heap", "to_words"]

IVF_MIN_ROWS = 200_000


class NamespaceIndex(IvfLayout):
    """Codes and ids of one namespace, append-only with tombstones, searched by Hamming distance.

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
        super().__init__(n_words, bits if bits is not None else 64 * n_words, ivf_min_rows=ivf_min_rows,
                         backend=backend)

    # -- writes ------------------------------------------------------------------------

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
        last = self.max_id()
        if np.any(np.diff(ids) <= 0) or (last is not None and ids[0] <= last):
            if self.vectors is not None:
                raise ValueError("ids must increase in a namespace with a vector partition")
            self._add_unordered(ids, code_words)
            return
        self.extend_tail(self.append(ids, code_words), lists)

    def _add_unordered(self, ids: np.ndarray, code_words: np.ndarray) -> None:
        """Ids out of order or already present: rebuild the whole namespace (rare; O(n))."""
        old_ids, old_words = self.live_rows()
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

    def remove(self, ids) -> int:
        rows, found = self.rows_of(ids)
        rows = np.unique(rows[found])
        self.alive[rows] = False
        self.n_alive -= len(rows)
        if self.size > MIN_CAPACITY and self.n_alive < self.size // 2:
            self._compact()
        return len(rows)

    def _compact(self) -> None:
        if self.is_ivf:
            self.regroup(self.centroids, refit=False)
        else:
            live_ids, words = self.live_rows()
            self._reset()
            self.add(live_ids, words)
        release_freed_heap()

    def replace_all(self, ids: np.ndarray, code_words: np.ndarray) -> None:
        self._reset()
        self.add(ids, code_words)

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

    def add_rows(self, ids: np.ndarray, namespaces: list[str], codes: list[bytes]) -> None:
        """Add stored rows of any namespaces: ids int64 [n] (increasing), each one's namespace and code blob."""
        arr = np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(ids), self.bits // 8)
        ns = np.array(namespaces, dtype=object)
        for name in dict.fromkeys(namespaces):  # few Python objects at once
            sel = ns == name
            self.add(name, ids[sel], arr[sel])

    def set_partition(self, namespace: str, vectors: np.ndarray, ids, lists) -> None:
        """Give a namespace a vector partition (``NamespaceIndex.set_partition``)."""
        self.spaces[namespace].set_partition(vectors, ids, lists)

    def remove(self, namespace: str, ids) -> None:
        if namespace in self.spaces:
            self.spaces[namespace].remove(ids)

    def overwrite(self, namespace: str, ids, codes: np.ndarray) -> None:
        """New packed uint8 codes [n, bits / 8] for records of a namespace rewritten in place."""
        if namespace in self.spaces and len(ids):
            self.spaces[namespace].overwrite(np.asarray(ids, dtype=np.int64), to_words(codes))

    def refresh(self) -> None:
        """Lay every namespace out now (IVF build / fold-in), e.g. once after a bulk load."""
        for space in self.spaces.values():
            space.refresh()

    def search_many(self, namespace: str, query_codes: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``search`` of several packed codes uint8 [q, bits / 8] in one kernel call (without steering the
        probes): per query, (ids int64 [<=k], distances uint32 [<=k])."""
        space = self.spaces.get(namespace)
        if space is None or space.n_alive == 0 or not len(query_codes):
            return [(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)) for _ in query_codes]
        ids, dist = space.search_batch(to_words(np.asarray(query_codes)), k, nprobe=self.nprobe)
        keep = ids >= 0
        return [(ids[j][keep[j]], dist[j][keep[j]].astype(np.uint32)) for j in range(len(ids))]

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
