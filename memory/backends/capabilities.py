"""What some backends can do besides the ``base.Backend`` interface: small protocols, checked with ``isinstance``.

- ``TermIndex``: each record's words counted at add (``termindex``), for hybrid search;
- ``AfterCommitUpkeep``: an in-RAM index (and its IVF lists) brought up to a commit;
- ``ApiKeys``: the server's API keys kept in the store;
- ``FileStatistics``: a file's parts and sizes for ``stats``;
- ``BodyDemotion``: exact bodies dropped to meet a byte budget (``memory.compact``).

The local SQLite backend has them all; the Milvus backend none of them (``docs/milvus.md``).

What it does not do: the interface every backend has (``base``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TermIndex(Protocol):
    """A backend that can keep each record's ``termindex`` entry (the local SQLite file).

    ``has_term_index``: whether this store keeps one for every record (a ``text``/``llm`` store
    created with it); ``term_format``: the entries' format (``termindex.encode``'s ``fmt``);
    ``store_terms`` writes new records' entries in the insert's transaction; ``term_entries``
    reads them by id (absent ids: deleted meanwhile).
    """

    def has_term_index(self) -> bool: ...

    def term_format(self) -> int: ...

    def store_terms(self, txn, ids: Sequence[int], entries: Sequence) -> None: ...

    def term_entries(self, ids: Sequence[int]) -> dict: ...


@runtime_checkable
class AfterCommitUpkeep(Protocol):
    """A backend that keeps something of its own in step with the records (the local in-RAM index).

    ``ivf_lists``: the IVF lists of records about to be inserted (dequantized vectors), or
    None when the namespace has no partition, which ``store_ivf_lists`` keeps in the
    insert's transaction; after the commit, ``index_add`` / ``index_remove`` /
    ``index_rewrite`` take the records this handle inserted, deleted or rewrote, and
    ``upkeep`` fits or refits what has grown
    enough. Checked with ``isinstance``; a backend without it has nothing to do.
    """

    def ivf_lists(self, namespace: str, vectors: np.ndarray, *, dim: int, quantizer) -> np.ndarray | None: ...

    def store_ivf_lists(self, txn, ids: Sequence[int], lists: np.ndarray) -> None: ...

    def index_add(self, namespace: str, ids: Sequence[int], codes: np.ndarray, lists=None) -> None: ...

    def index_remove(self, namespace: str, ids: Sequence[int]) -> None: ...

    def index_rewrite(self, namespace: str, ids: Sequence[int], codes: np.ndarray) -> None: ...

    def upkeep(self, namespace: str, *, dim: int, quantizer, progress: bool = False) -> None: ...


@runtime_checkable
class ApiKeys(Protocol):
    """A backend that keeps the servers' API keys (hashed tokens and their grants; see ``memory.keys``)."""

    def put_key(self, name: str, digest: str, grants: dict[str, str]) -> None:
        """Store a new key. Raises ConfigError when a key with this name exists."""

    def keys(self, *, digest: str | None = None) -> list[tuple[str, str, dict, float, float | None]]:
        """(name, digest, grants, created, revoked) of every key, oldest first, or of the key with this digest."""

    def revoke_key(self, name: str) -> bool:
        """Mark a valid key revoked; False when no valid key has this name."""


@runtime_checkable
class FileStatistics(Protocol):
    """A backend with a file of its own to describe (the local SQLite store)."""

    def file_bytes(self) -> int:
        """Bytes of the file (and its WAL)."""

    def file_parts(self) -> dict[str, int]:
        """Bytes of the file by table and index."""

    def partitions(self) -> dict[str, dict]:
        """The IVF partition of each partitioned namespace (nlist, what its lists were fitted from)."""


@runtime_checkable
class BodyDemotion(Protocol):
    """A backend whose exact bodies (text/llm tier) can be dropped record by record (``memory.compact``).

    A demoted record keeps its id, code, int8 vector, hints and metadata: it is found by search as
    before and rebuilt by a decoder; only its body is gone. Last-use times order the demotions:
    a record's last recorded access (``note_access``, once ``track_access`` started it), else its
    creation time.
    """

    def body_ages(self, namespace: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids int64, body bytes int64, last use float64 Unix time) of the records with a body, of one
        namespace or of all, in id order."""

    def demote(self, txn, ids: Sequence[int]) -> int:
        """Drop the bodies of these ids inside the caller's transaction; how many had one."""

    def reclaim(self, *, full: bool = False) -> None:
        """Give the space of dropped bodies back (``full``: rewrite the whole store, also packing half-empty pages)."""

    def budget_bytes(self) -> int:
        """The size a byte budget is held to."""

    def track_access(self, txn) -> None:
        """Start keeping last-access times (inside the caller's transaction); nothing when kept already."""

    def note_access(self, accessed: Mapping[int, float]) -> bool:
        """Write last-access times (id → Unix time) if they are kept; False when the store was busy
        (nothing written: try again later), True otherwise."""
