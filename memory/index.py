"""In-memory Hamming top-C over the binary codes of each namespace.

Codes of one namespace live in one growing array ``codes`` uint64 [capacity,
words] (the packed bytes zero-padded to whole 64-bit words, so XOR + popcount
works on words; padding bits are zero on both sides and never count). Rows are
appended; a delete clears a row's ``alive`` flag, and the array is compacted
when more than half of it is dead. A query scans the live prefix in place: the
code matrix is never copied per query.

Ties: candidates are ordered by (distance, record id), so the same store and
query always give the same candidates.

What it does not do: rerank (``store.py`` with ``quantize.py``) or persist.
"""

from __future__ import annotations

import numpy as np

_SCAN_ROWS = 1 << 16  # rows per block: keeps the XOR temporaries in cache-sized pieces


def to_words(codes: np.ndarray) -> np.ndarray:
    """Packed uint8 codes [n, nbytes] → uint64 [n, ceil(nbytes / 8)], zero padded."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n, nb = codes.shape
    words = -(-nb // 8)
    if nb != words * 8:
        padded = np.zeros((n, words * 8), dtype=np.uint8)
        padded[:, :nb] = codes
        codes = padded
    return codes.view(np.uint64).reshape(n, words)


def hamming_distances(query_words: np.ndarray, code_words: np.ndarray) -> np.ndarray:
    """Distances uint32 [n] between one query uint64 [w] and codes uint64 [n, w]."""
    out = np.empty(len(code_words), dtype=np.uint32)
    for s in range(0, len(code_words), _SCAN_ROWS):
        block = code_words[s : s + _SCAN_ROWS]
        x = np.bitwise_xor(block, query_words[None, :])  # [rows, w]
        out[s : s + len(block)] = np.bitwise_count(x).sum(axis=1, dtype=np.uint32)
    return out


def topk_by_distance(dist: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest distances, ordered by (distance, id)."""
    n = len(dist)
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        # the k-th smallest distance; everything strictly below it is in, ties at it by id
        kth = np.partition(dist, k - 1)[k - 1]
        below = np.flatnonzero(dist < kth)
        at = np.flatnonzero(dist == kth)
        at = at[np.argsort(ids[at], kind="stable")][: k - len(below)]
        pos = np.concatenate([below, at])
    else:
        pos = np.arange(n)
    order = np.lexsort((ids[pos], dist[pos]))
    return pos[order]


class NamespaceIndex:
    """Codes and ids of one namespace, append-only with tombstones."""

    def __init__(self, n_words: int) -> None:
        self.n_words = n_words
        self.codes = np.zeros((0, n_words), dtype=np.uint64)
        self.ids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.size = 0  # rows used
        self.n_alive = 0
        self._pos: dict[int, int] = {}

    def add(self, ids: np.ndarray, code_words: np.ndarray) -> None:
        n = len(ids)
        if self.size + n > len(self.codes):
            cap = max(1024, 2 * (self.size + n))
            for name, dtype, shape in (
                ("codes", np.uint64, (cap, self.n_words)),
                ("ids", np.int64, (cap,)),
                ("alive", bool, (cap,)),
            ):
                grown = np.zeros(shape, dtype=dtype)
                grown[: self.size] = getattr(self, name)[: self.size]
                setattr(self, name, grown)
        s = self.size
        self.codes[s : s + n] = code_words
        self.ids[s : s + n] = ids
        self.alive[s : s + n] = True
        for j, i in enumerate(ids.tolist()):
            self._pos[i] = s + j
        self.size += n
        self.n_alive += n

    def remove(self, ids) -> int:
        removed = 0
        for i in ids:
            p = self._pos.pop(int(i), None)
            if p is not None:
                self.alive[p] = False
                removed += 1
        self.n_alive -= removed
        if self.size > 1024 and self.n_alive < self.size // 2:
            self._compact()
        return removed

    def _compact(self) -> None:
        keep = np.flatnonzero(self.alive[: self.size])
        self.codes = self.codes[keep].copy()
        self.ids = self.ids[keep].copy()
        self.alive = np.ones(len(keep), dtype=bool)
        self.size = len(keep)
        self._pos = {i: p for p, i in enumerate(self.ids.tolist())}

    def replace_all(self, ids: np.ndarray, code_words: np.ndarray) -> None:
        self.__init__(self.n_words)
        self.add(ids, code_words)

    def search(self, query_words: np.ndarray, k: int, *, allowed: np.ndarray | None = None):
        """(ids int64 [<=k], distances uint32 [<=k]) of the nearest live codes.

        ``allowed`` is an optional bool mask [size] that further restricts rows.
        """
        dist = hamming_distances(query_words, self.codes[: self.size])
        mask = self.alive[: self.size]
        if allowed is not None:
            mask = mask & allowed
        if not mask.all():
            rows = np.flatnonzero(mask)
            dist, ids = dist[rows], self.ids[rows]
        else:
            ids = self.ids[: self.size]
        pos = topk_by_distance(dist, ids, k)
        return ids[pos], dist[pos]

    def live_ids(self) -> np.ndarray:
        """Ids of live rows, in row order."""
        return self.ids[: self.size][self.alive[: self.size]]

    def codes_of(self, ids) -> np.ndarray:
        """Packed uint8 codes [len(ids), words * 8] of live ids (padding bytes included)."""
        rows = np.fromiter((self._pos[int(i)] for i in ids), dtype=np.int64, count=len(ids))
        return np.ascontiguousarray(self.codes[rows]).view(np.uint8)

    def mask_for(self, ids) -> np.ndarray:
        m = np.zeros(self.size, dtype=bool)
        for i in ids:
            p = self._pos.get(int(i))
            if p is not None:
                m[p] = True
        return m


class HammingIndex:
    """Namespace → NamespaceIndex. Namespaces are hard partitions."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.n_words = -(-bits // 64)
        self.spaces: dict[str, NamespaceIndex] = {}

    def __len__(self) -> int:
        return sum(s.n_alive for s in self.spaces.values())

    def add(self, namespace: str, ids, codes: np.ndarray) -> None:
        space = self.spaces.get(namespace)
        if space is None:
            space = self.spaces[namespace] = NamespaceIndex(self.n_words)
        space.add(np.asarray(ids, dtype=np.int64), to_words(codes))

    def remove(self, namespace: str, ids) -> None:
        if namespace in self.spaces:
            self.spaces[namespace].remove(ids)

    def search(self, namespace: str, query_code: np.ndarray, k: int, *, allowed_ids=None):
        """Nearest ids and Hamming distances in one namespace; empty for an unknown one."""
        space = self.spaces.get(namespace)
        if space is None or space.n_alive == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
        qw = to_words(query_code[None, :])[0]
        allowed = None if allowed_ids is None else space.mask_for(allowed_ids)
        return space.search(qw, k, allowed=allowed)
