"""The rows of one namespace: growable code, id and tombstone arrays, and id → row lookups.

Memory layout (``NamespaceRows``), per row:

- ``cols`` uint64 [n_words, capacity]: the codes, column-major (word w of every
  code contiguous; see ``kernels``): bits / 8 bytes per passage, padded to 8.
- ``ids`` int64 [capacity]: the record id of each row (8 bytes).
- ``alive`` bool [capacity]: False once deleted (1 byte).
- only once the rows are grouped by list (``ivf_layout``): ``perm`` int32 [capacity],
  the rows in increasing id order (4 bytes).

No per-id Python dict: rows are appended in increasing id order (SQLite
AUTOINCREMENT ids), so without ``perm`` ``ids`` is sorted and an id's row is
``searchsorted(ids, id)``; with it, ``searchsorted(ids, id, sorter=perm)``.
Spare capacity is allocated with ``np.empty`` and never touched, so it costs
address space but no resident memory.

What it does not do: group rows by IVF list (``ivf_layout``), search (``index``),
or check the ids it is given (``NamespaceIndex.add`` does).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_CAPACITY", "NamespaceRows", "release_freed_heap"]

MIN_CAPACITY = 1024


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


class NamespaceRows:
    """Codes and ids of one namespace, append-only with tombstones.

    Args:
        n_words: uint64 words per code (``ceil(bits / 64)``).
    """

    def __init__(self, n_words: int) -> None:
        self.n_words = n_words
        self.cols = np.zeros((n_words, 0), dtype=np.uint64)
        self.ids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.size = 0  # rows used
        self.n_alive = 0
        self.perm: np.ndarray | None = None  # int32 [capacity]: rows in id order

    def _grow(self, need: int) -> None:
        cap = self.cols.shape[1]
        if need <= cap:
            return
        cap = max(MIN_CAPACITY, need + need // 2)
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

    def append(self, ids: np.ndarray, code_words: np.ndarray) -> int:
        """Write live rows after the last one; returns the first new row.

        Args:
            ids: int64 [n], increasing and above every id present (not checked here).
            code_words: uint64 [n, n_words].
        """
        n = len(ids)
        self._grow(self.size + n)
        s = self.size
        self.cols[:, s : s + n] = code_words.T
        self.ids[s : s + n] = ids
        self.alive[s : s + n] = True
        if self.perm is not None:
            self.perm[s : s + n] = np.arange(s, s + n, dtype=np.int32)
        self.size += n
        self.n_alive += n
        return s

    def overwrite(self, ids: np.ndarray, code_words: np.ndarray) -> None:
        """New codes uint64 [n, n_words] for live ids already present, in their rows (ids not present: nothing).

        A row keeps its place, so in an IVF layout it stays in its list until the next relayout."""
        rows, found = self.rows_of(ids)
        self.cols[:, rows[found]] = np.asarray(code_words, dtype=np.uint64)[found].T

    def max_id(self) -> int | None:
        """The largest id present (live or deleted), None when there are no rows."""
        if self.size == 0:
            return None
        if self.perm is not None:
            return int(self.ids[self.perm[self.size - 1]])
        return int(self.ids[self.size - 1])

    def live_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 [n_alive], code words uint64 [n_alive, w]) of live rows, in id order."""
        rows = self.rows_in_id_order()
        rows = rows[self.alive[rows]]
        return self.ids[rows].copy(), np.ascontiguousarray(self.cols[:, rows].T)

    def rows_in_id_order(self) -> np.ndarray:
        """int64 [size]: every row (dead ones too), in increasing id order."""
        if self.perm is not None:
            return self.perm[: self.size].astype(np.int64)
        return np.arange(self.size)

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

    def live_ids(self) -> np.ndarray:
        """Ids of live rows, in increasing id order."""
        rows = self.rows_in_id_order()
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
