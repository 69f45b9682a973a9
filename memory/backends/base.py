"""The storage-backend interface: what ``Memory`` needs of a store, whatever keeps it.

``Memory`` (``store.py``) embeds, quantizes, hashes, keeps the lexicon and runs the
three search stages (Hamming top-C → asymmetric → int8 rerank); everything it keeps or
looks up goes through a ``Backend``:

- **settings**: the store config and named blobs (hasher parameters, int8 calibration,
  text dictionaries, …): ``initialize``, ``load_config``, ``get_meta``, ``set_meta``;
- **lexicon**: ``load_lexicon``, ``terms``, ``save_lexicon``;
- **records**: ``insert`` (codes, int8 vectors, hints, metadata, optional text/llm-tier
  bodies), ``fetch``, ``fetch_present_qvecs``, ``fetch_qvecs``, ``fetch_texts``,
  ``delete``, ``update_codes`` (a refit's new codes under a new generation),
  ``iter_qvecs``, ``sample_qvecs``, ``filter_ids``, ``count``, ``namespaces``;
- **Hamming stage**: ``candidates`` (stage 1: top-C ids and distances within a namespace,
  optionally restricted to ``where``-filtered ids, with the codes and int8 vectors where the
  engine returns them; ``hamming_topk`` is the same without them), ``codes_of`` and
  ``fetch_present_qvecs`` (what the later stages read when stage 1 did not give it),
  ``live_ids``, ``n_records``;
- **keeping up with other writers**: ``stale`` (a cheap look) and ``sync`` (before every
  search and inside every write), ``load_index`` / ``index_add`` / ``index_remove`` / ``mark_synced``;
- **writes** happen inside ``transaction()``; the handle it yields is passed back to the
  write methods.

Two implementations: ``local.backend.LocalBackend`` (the default: it delegates to
``storage.Storage`` and ``index.HammingIndex``, so the local store keeps its speed, RAM and
crash safety) and ``milvus.backend.MilvusBackend`` (a Milvus server or cluster;
``Memory("milvus://host:port/collection")``). ``AfterCommitUpkeep`` is an optional protocol
(the local IVF lists), checked with ``isinstance``.

What it does not do: embed, hash, quantize or rank (``store``), SQL (``storage``) or
Hamming kernels (``index``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..config import StoreConfig
from ..filters import Dialect, Where
from ..hints import Lexicon
from ..search import Candidates

__all__ = ["Backend", "Row"]


@dataclass(frozen=True)
class Row:
    """One stored record as a backend gives it back."""

    id: int
    namespace: str
    created: float
    metadata: dict
    code: bytes
    qvec: bytes
    hints: bytes
    gen: int


@runtime_checkable
class AfterCommitUpkeep(Protocol):
    """A backend with work of its own on new records (the local index's IVF lists of large namespaces).

    ``ivf_lists``: the lists of records about to be inserted (dequantized vectors), or None
    when the namespace has no partition, which ``store_ivf_lists`` keeps in the insert's
    transaction; ``upkeep``: after a committed batch, fit or refit
    what has grown enough. Checked with ``isinstance``; a backend without it has nothing to do.
    """

    def ivf_lists(self, namespace: str, vectors: np.ndarray, *, dim: int, quantizer) -> np.ndarray | None: ...

    def store_ivf_lists(self, txn, ids: Sequence[int], lists: np.ndarray) -> None: ...

    def upkeep(self, namespace: str, *, dim: int, quantizer, progress: bool = False) -> None: ...


class Backend(abc.ABC):
    """Where a ``Memory`` keeps its records and settings, and finds Hamming candidates.

    Attributes:
        location: what to name the store in messages (a path, or a URI without secrets).
        readonly: writes raise StoreError.
        is_new: nothing was created yet (``initialize`` creates the store).
        local: the local SQLite backend (IVF partitions, API keys, text tiers, file stats).
        transactional: a failed write batch leaves nothing behind (SQLite); False where
            writes apply as they are made (Milvus), so a failed add may have stored a part.
        last_attempt: ids of the insert in progress on a backend that is not transactional
            (what a failed add reports as absent); empty otherwise.
        where_dialect: the rules ``filters.Where.parse`` checks a ``where`` under for this
            backend (``"sqlite"`` or ``"milvus"``); ``filter_ids`` takes a ``Where`` parsed so.
    """

    location: str
    readonly: bool
    is_new: bool
    local: bool = False
    transactional: bool = True
    last_attempt: Sequence[int] = ()
    where_dialect: Dialect

    # -- lifecycle -----------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def closed(self) -> bool: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def checkpoint(self) -> None:  # noqa: B027 - optional hook
        """Flush what the backend buffers (the local WAL); nothing by default."""

    def discard_failed_creation(self, created: bool = False) -> None:  # noqa: B027 - optional hook
        """Close after a failed open; remove what a failed creation left, if this handle created it."""
        self.close()

    def start(self, mem) -> None:
        """First load after ``mem`` has its config and hasher (builds the local index)."""
        self.load_index(mem)

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager:
        """A write: all of it or nothing where the backend can (see each implementation)."""

    # -- settings ------------------------------------------------------------------------

    @abc.abstractmethod
    def initialize(self, config: StoreConfig, extra_meta: dict[str, bytes | str] | None = None) -> bool:
        """Create the store; False if another process created it first."""

    @abc.abstractmethod
    def load_config(self) -> StoreConfig: ...

    @abc.abstractmethod
    def get_meta(self, key: str) -> bytes | str | None: ...

    @abc.abstractmethod
    def set_meta(self, txn, key: str, value: bytes | str) -> None: ...

    def check(self, *, bits: int, dim: int, generation: int | None) -> None:  # noqa: B027 - optional
        """Integrity check on open (raises StoreCorruptError); nothing by default."""

    # -- lexicon -------------------------------------------------------------------------

    @abc.abstractmethod
    def load_lexicon(self) -> Lexicon: ...

    @abc.abstractmethod
    def terms(self, ids: Sequence[int]) -> dict[int, str]: ...

    @abc.abstractmethod
    def save_lexicon(self, txn, lex: Lexicon, new_ids: Sequence[int], touched: set[int]) -> None: ...

    # -- records -------------------------------------------------------------------------

    @abc.abstractmethod
    def insert(self, txn, *, namespace: str, metadata: Sequence[dict], codes: np.ndarray, qvecs: np.ndarray,
               hints: Sequence[bytes], gen: int, texts: Sequence[bytes] | None = None) -> list[int]:
        """Store records (codes uint8 [n, bits/8], qvecs int8 [n, dim]); their new ids in order."""

    @abc.abstractmethod
    def fetch(self, ids: Sequence[int]) -> dict[int, Row]:
        """Rows by id; missing ids are absent."""

    @abc.abstractmethod
    def fetch_present_qvecs(self, ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask bool [len(ids)] of ids that exist, int8 [mask.sum(), dim] in the order of ids)."""

    def fetch_qvecs(self, ids: Sequence[int], dim: int) -> np.ndarray:
        """int8 [len(ids), dim] in the order of ids (all must exist)."""
        return self.fetch_present_qvecs(np.asarray(ids, dtype=np.int64), dim)[1]

    def fetch_texts(self, ids: Sequence[int]) -> dict[int, bytes]:
        """Text-tier bodies by id (none by default)."""
        return {}

    def body_store(self):
        """What the text and llm tiers (``texttier``, ``llmtier``) keep their bodies and settings in.

        An object with ``path``, ``is_new``, ``get_meta``, ``set_meta``, ``delete_meta``,
        ``transaction``, ``count``, ``byte_sums``, ``iter_texts`` and ``update_texts`` (the
        local backend's ``Storage``); the same object for the life of the backend.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no text bodies")

    def check_bodies(self, bodies: Sequence[bytes]) -> None:  # noqa: B027 - optional hook
        """Raise InputError, before anything is written, when a body cannot be stored here."""

    @abc.abstractmethod
    def delete(self, txn, ids: Sequence[int]) -> list[tuple[int, str]]:
        """Delete; (id, namespace) of the records that existed."""

    @abc.abstractmethod
    def update_codes(self, txn, ids: np.ndarray, codes: np.ndarray, gen: int) -> None:
        """Overwrite codes with a refit's codes of generation ``gen``."""

    @abc.abstractmethod
    def iter_qvecs(self, dim: int, *, after: int = -1, upto: int | None = None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64 [b], int8 [b, dim]) batches over all records with ids in (after, upto]."""

    @abc.abstractmethod
    def sample_qvecs(self, dim: int, n: int) -> np.ndarray:
        """int8 [min(n, count), dim]: a deterministic sample of stored vectors."""

    @abc.abstractmethod
    def last_id(self) -> int:
        """The highest id assigned so far (0 for an empty store)."""

    @abc.abstractmethod
    def filter_ids(self, namespace: str, where: Where) -> list[int]:
        """Ids of a namespace's records whose metadata equals every key/value of ``where``
        (checked at the door, under this backend's ``where_dialect``)."""

    @abc.abstractmethod
    def count(self, namespace: str | None = None) -> int: ...

    @abc.abstractmethod
    def namespaces(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def byte_sums(self) -> dict[str, int]:
        """``records`` (count) and total stored bytes of each part (code, qvec, hints, metadata, text, lexicon)."""

    def file_bytes(self) -> int:
        """Bytes of the local file (0 for a remote engine)."""
        return 0

    def file_parts(self) -> dict[str, int]:
        return {}

    # -- Hamming stage -------------------------------------------------------------------

    @abc.abstractmethod
    def sync(self, mem) -> None:
        """Bring ``mem`` (hasher, quantizer, lexicon) and the index up to the backend's latest state."""

    def stale(self) -> bool:
        """Whether ``sync`` may have anything to do (a cheap look; True when the backend cannot tell)."""
        return True

    def load_index(self, mem) -> None:  # noqa: B027 - optional hook
        """(Re)build whatever the Hamming stage keeps in RAM; nothing for a remote engine."""

    def mark_synced(self) -> None:  # noqa: B027 - optional hook
        """This handle's own write (inside ``transaction``) needs no reload by the next ``sync``."""

    def index_add(self, namespace: str, ids: Sequence[int], codes: np.ndarray, lists=None) -> None:  # noqa: B027
        """Records this handle just inserted (after the commit)."""

    def index_remove(self, namespace: str, ids: Sequence[int]) -> None:  # noqa: B027
        """Records this handle just deleted (after the commit)."""

    def hamming_topk(self, namespace: str, qcode: np.ndarray, n: int, *, generation: int,
                     allowed_ids=None, query_proj=None, query_vec=None) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` nearest ids (int64) by Hamming distance (uint32) to packed ``qcode`` in one namespace.

        Only codes of hashing ``generation`` are compared; ``allowed_ids`` restricts the
        search (a ``where`` filter). Ties are broken by id. A backend implements this or
        ``candidates`` (each defaults to the other)."""
        c = self.candidates(namespace, qcode, n, generation=generation, allowed_ids=allowed_ids,
                            query_proj=query_proj, query_vec=query_vec)
        return c.ids, c.hamming

    def candidates(self, namespace: str, qcode: np.ndarray, n: int, *, generation: int, allowed_ids=None,
                   query_proj=None, query_vec=None):
        """Stage 1 (``search.Candidates``): ``hamming_topk``'s ids and distances, with the codes and int8
        vectors of those rows where the engine returns them with the ids (then the later stages ask
        nothing more; no state is kept between calls)."""
        ids, ham = self.hamming_topk(namespace, qcode, n, generation=generation, allowed_ids=allowed_ids,
                                     query_proj=query_proj, query_vec=query_vec)
        return Candidates(ids, ham)

    @abc.abstractmethod
    def codes_of(self, namespace: str, ids: np.ndarray) -> np.ndarray:
        """Packed codes uint8 [len(ids), bits/8] of candidates, in the order of ids."""

    @abc.abstractmethod
    def live_ids(self, namespace: str | None = None) -> np.ndarray:
        """int64 ids (of one namespace, or all), ascending."""

    @abc.abstractmethod
    def n_records(self) -> int:
        """How many records the store holds (after ``sync``)."""

    def has_namespace(self, namespace: str) -> bool:
        return self.count(namespace) > 0

    # -- API keys (hashed tokens and their grants; see memory/keys.py) ------------------

    @abc.abstractmethod
    def put_key(self, name: str, digest: str, grants: dict[str, str]) -> None:
        """Store a new key. Raises ConfigError when a key with this name exists."""

    @abc.abstractmethod
    def keys(self, *, digest: str | None = None) -> list[tuple[str, str, dict, float, float | None]]:
        """(name, digest, grants, created, revoked) of every key, oldest first, or of the key with this digest."""

    @abc.abstractmethod
    def revoke_key(self, name: str) -> bool:
        """Mark a valid key revoked; False when no valid key has this name."""
