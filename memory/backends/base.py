"""The storage-backend interface: what ``Memory`` needs of a store, whatever keeps it.

``Memory`` (``store.py``) embeds, quantizes, hashes, keeps the lexicon and runs the
three search stages (``search.py``); everything it keeps or looks up goes through a
``Backend`` — about twenty methods in five groups:

- **lifecycle and transactions**: ``closed``, ``close``, ``transaction`` (writes happen
  inside it; the handle it yields is passed back to the write methods), ``initialize``,
  ``load_config``;
- **settings**, a key–value store of named blobs (hasher parameters, int8 calibration,
  text dictionaries, …) with a change feed: ``setting``, ``put_setting``,
  ``changes(since)`` (the version tags that moved since the ones a handle holds;
  ``state.SharedState`` follows it, the backend never touches a handle's fields);
- **records**: ``insert``, ``delete``, ``rewrite`` (records overwritten in place), ``update`` (a refit's codes), ``rows(ids, fields)``
  (any columns of given ids, as ``Rows``), ``scan`` (one column of every record, in id
  order), ``select`` (ids of a namespace, optionally matching a ``filters.Where``),
  ``last_id``, ``count``, ``namespaces``, ``byte_sums``;
- **stage 1**: ``candidates`` — the Hamming top-n of one namespace as ``search.Candidates``,
  with whatever the engine gives back with the ids (codes, int8 vectors), so no later
  stage asks again and no state is kept between calls;
- **lexicon**: ``load_lexicon``, ``save_lexicon`` (and ``terms``, a lookup of a few).

Hooks with defaults: ``follow`` (bring what the engine keeps in RAM up to the shared
state: the local index), ``stale``, ``sample``, ``has_namespace``, ``check``,
``check_bodies``, ``body_store``, ``body_counts``. Small optional protocols (``capabilities``, named
here too), checked with ``isinstance``: ``AfterCommitUpkeep``, ``ApiKeys``, ``FileStatistics``,
``BodyDemotion``, ``TermIndex``.

Two implementations: ``local.backend.LocalBackend`` (the default: one SQLite file and
an in-RAM Hamming index) and ``milvus.backend.MilvusBackend`` (a Milvus server or
cluster; ``Memory("milvus://host:port/collection")``).

What it does not do: embed, hash, quantize or rank (``store``, ``search``), SQL
(``local.storage``) or Hamming kernels (``local.index``).
"""

from __future__ import annotations

import abc
import operator
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from ..config import StoreConfig
from ..filters import Dialect, Where
from ..hints import Lexicon
from ..search import Candidates
from .capabilities import AfterCommitUpkeep, ApiKeys, BodyDemotion, FileStatistics, TermIndex

__all__ = ["FIELDS", "AfterCommitUpkeep", "ApiKeys", "Backend", "BodyDemotion", "FileStatistics", "Row", "Rows",
           "TermIndex"]

FIELDS = ("namespace", "created", "metadata", "code", "qvec", "hints", "gen", "text")
RECORD = FIELDS[:-1]  # what ``Row`` holds: every field but the text-tier body


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


@dataclass(frozen=True)
class Rows:
    """``Backend.rows``'s answer: the asked ids that exist, in the asked order, and their columns.

    Attributes:
        ids: int64 [n]; an asked id with no record (never stored, or deleted meanwhile) is absent.
        columns: field → values aligned with ``ids``: ``code`` and ``qvec`` as bytes or as
            a 2-D array (uint8 [n, bits/8], int8 [n, dim]), ``text`` as bytes (None: the
            record has no body), the others as ``Row`` has them.
    """

    ids: np.ndarray
    columns: Mapping[str, Sequence]

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, id) -> bool:
        return int(id) in self.positions

    def __getitem__(self, field: str) -> Sequence:
        return self.columns[field]

    @property
    def positions(self) -> dict[int, int]:
        """id → position in ``ids``."""
        return {int(i): j for j, i in enumerate(self.ids)}

    def array(self, field: str, dtype) -> np.ndarray:
        """``code`` or ``qvec`` as one 2-D array (dtype uint8 or int8), rows in the order of ``ids``."""
        col = self.columns[field]
        if isinstance(col, np.ndarray):
            return col
        if not len(col):
            return np.zeros((0, 0), dtype)
        return np.frombuffer(b"".join(col), dtype=dtype).reshape(len(col), -1)

    def record(self, id: int) -> Row:
        """The ``Row`` of one id (``columns`` must hold every field of ``RECORD``)."""
        j = self.positions[int(id)]
        c = self.columns
        return Row(int(id), c["namespace"][j], c["created"][j], c["metadata"][j], bytes(c["code"][j]),
                   bytes(c["qvec"][j]), c["hints"][j], c["gen"][j])

    @classmethod
    def of(cls, ids: Sequence[int], found: Mapping[int, object], fields: Sequence[str]) -> Rows:
        """From id → ``Row`` (or id → text body when ``fields`` is ``("text",)``), in the order of ``ids``."""
        present = [i for i in map(int, ids) if i in found]
        if tuple(fields) == ("text",):
            return cls(np.array(present, dtype=np.int64), {"text": [found[i] for i in present]})
        values = map(operator.attrgetter(*fields), map(found.__getitem__, present))
        if len(fields) == 1:
            columns = {fields[0]: list(values)}
        else:
            columns = dict(zip(fields, map(list, zip(*values, strict=True)), strict=True)) if present else \
                {f: [] for f in fields}
        return cls(np.array(present, dtype=np.int64), columns)


class Backend(abc.ABC):
    """Where a ``Memory`` keeps its records and settings, and finds Hamming candidates.

    Attributes:
        location: what to name the store in messages (a path, or a URI without secrets).
        readonly: writes raise StoreError.
        is_new: nothing was created yet (``initialize`` creates the store).
        transactional: a failed write batch leaves nothing behind (SQLite); False where
            writes apply as they are made (Milvus), so a failed add may have stored a part.
        last_attempt: ids of the insert in progress on a backend that is not transactional
            (what a failed add reports as absent); empty otherwise.
        where_dialect: the rules ``filters.Where.parse`` checks a ``where`` under for this
            backend (``"sqlite"`` or ``"milvus"``); ``select`` takes a ``Where`` parsed so.
    """

    location: str
    readonly: bool
    is_new: bool
    transactional: bool = True
    last_attempt: Sequence[int] = ()
    where_dialect: Dialect

    # -- lifecycle and transactions ------------------------------------------------------

    @property
    @abc.abstractmethod
    def closed(self) -> bool: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Flush what the backend buffers (the local WAL) and close; a second call does nothing."""

    def discard_failed_creation(self, created: bool = False) -> None:  # noqa: B027 - optional hook
        """Close after a failed open; remove what a failed creation left, if this handle created it."""
        self.close()

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager:
        """A write: all of it or nothing where the backend can (see each implementation)."""

    @abc.abstractmethod
    def initialize(self, config: StoreConfig, settings: dict[str, bytes | str] | None = None) -> bool:
        """Create the store with these first settings; False if another process created it first."""

    @abc.abstractmethod
    def load_config(self) -> StoreConfig: ...

    def check(self, *, bits: int, dim: int, generation: int | None) -> None:  # noqa: B027 - optional hook
        """Integrity check on open (raises StoreCorruptError); nothing by default."""

    # -- settings and their change feed ---------------------------------------------------

    @abc.abstractmethod
    def setting(self, key: str) -> bytes | str | None:
        """A named setting's value, or None."""

    @abc.abstractmethod
    def put_setting(self, txn, key: str, value: bytes | str) -> None: ...

    @abc.abstractmethod
    def changes(self, since: Mapping[str, str]) -> dict[str, str]:
        """The change feed: version tags of the watched state (``hasher``, ``quantizer``, ``lexicon``,
        and ``records`` where the backend can tell) that differ from ``since``; empty when nothing moved.

        A key absent from the answer has not changed; ``records`` (when given) is read first, so
        a handle that follows the feed never marks a later commit as seen."""

    def stale(self) -> bool:
        """Whether ``changes`` may have anything to say (a cheap look; True when the backend cannot tell)."""
        return True

    def follow(self, state) -> None:  # noqa: B027 - optional hook
        """Bring what the engine keeps in RAM (the local index) up to ``state`` (``state.SharedState``,
        just updated from ``changes``) and to the records of ``state.versions["records"]``; reads the
        state, never writes it. Nothing for a remote engine."""

    # -- records -------------------------------------------------------------------------

    @abc.abstractmethod
    def insert(self, txn, *, namespace: str, metadata: Sequence[dict], codes: np.ndarray, qvecs: np.ndarray,
               hints: Sequence[bytes], gen: int, texts: Sequence[bytes] | None = None) -> list[int]:
        """Store records (codes uint8 [n, bits/8], qvecs int8 [n, dim]); their new ids in order."""

    @abc.abstractmethod
    def delete(self, txn, ids: Sequence[int]) -> list[tuple[int, str]]:
        """Delete; (id, namespace) of the records that existed."""

    @abc.abstractmethod
    def rewrite(self, txn, ids: Sequence[int], *, metadata: Sequence[dict], codes: np.ndarray, qvecs: np.ndarray,
                hints: Sequence[bytes], gen: int, texts: Sequence[bytes] | None = None) -> None:
        """Overwrite stored records in place (``dedup="replace"``): each id keeps its namespace and
        creation time and takes the new metadata, code, int8 vector, hints (and body); other
        processes' handles see the new codes when they follow the store (ids gone meanwhile: nothing)."""

    @abc.abstractmethod
    def update(self, txn, ids: np.ndarray, *, codes: np.ndarray, gen: int) -> None:
        """Overwrite codes with a refit's codes of generation ``gen`` (rows gone meanwhile: nothing)."""

    @abc.abstractmethod
    def rows(self, ids: Sequence[int], fields: Sequence[str] = RECORD) -> Rows:
        """Columns ``fields`` (names from ``FIELDS``) of the records with these ids, as ``Rows``."""

    @abc.abstractmethod
    def scan(self, field: str, *, after: int = -1, upto: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64 [b], values [b, …]) batches of one column (``qvec`` int8 or ``code`` uint8) of
        every record with id in (after, upto], in id order."""

    @abc.abstractmethod
    def select(self, namespace: str | None, where: Where | None = None) -> np.ndarray:
        """int64 ids, ascending: of a namespace (None: of all), those whose metadata equals every
        key/value of ``where`` when given (checked at the door under ``where_dialect``)."""

    def sample(self, n: int) -> np.ndarray:
        """int8 [min(n, count), dim]: stored vectors to fit on (by default the first n in scan order)."""
        parts, have = [], 0
        for _, v in self.scan("qvec"):
            parts.append(v[: n - have])
            have += len(parts[-1])
            if have >= n:
                break
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.int8)

    @abc.abstractmethod
    def last_id(self) -> int:
        """The highest id assigned so far (0 for an empty store)."""

    @abc.abstractmethod
    def count(self, namespace: str | None = None) -> int: ...

    @abc.abstractmethod
    def namespaces(self) -> dict[str, int]: ...

    def has_namespace(self, namespace: str) -> bool:
        return self.count(namespace) > 0

    @abc.abstractmethod
    def byte_sums(self) -> dict[str, int]:
        """``records`` (count) and total stored bytes of each part (code, qvec, hints, metadata, text, lexicon)."""

    def body_store(self):
        """What the text and llm tiers (``tiers.text``, ``tiers.llm``) keep their bodies and settings in.

        A ``tiers.bodystore.BodyStore`` (the local backend's ``Storage``, Milvus's ``Bodies``); the
        same object for the life of the backend.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no text bodies")

    def body_counts(self) -> dict[str, int]:
        """How many records keep an ``llm`` body and how many a ``text`` body (asked of text and llm
        stores); by default every record a text body."""
        return {"llm": 0, "text": self.count()}

    def check_bodies(self, bodies: Sequence[bytes]) -> None:  # noqa: B027 - optional hook
        """Raise InputError, before anything is written, when a body cannot be stored here."""

    # -- stage 1 -------------------------------------------------------------------------

    @abc.abstractmethod
    def candidates(self, namespace: str, qcode: np.ndarray, n: int, *, generation: int, allowed_ids=None,
                   query_proj=None, query_vec=None) -> Candidates:
        """The ``n`` nearest records by Hamming distance to packed ``qcode`` in one namespace, as
        ``search.Candidates`` (ties by id), with the codes and int8 vectors the engine returns with them.

        Only codes of hashing ``generation`` are compared; ``allowed_ids`` restricts the search
        (a ``where`` filter); ``query_proj`` / ``query_vec`` may steer an engine's own probing."""

    def candidates_many(self, namespace: str, qcodes: np.ndarray, n: int, *, generation: int) -> list[Candidates]:
        """``candidates`` of several queries (uint8 [q, bits/8]) at once: one call where the engine can."""
        return [self.candidates(namespace, q, n, generation=generation) for q in qcodes]

    # -- lexicon -------------------------------------------------------------------------

    @abc.abstractmethod
    def load_lexicon(self) -> Lexicon: ...

    def terms(self, ids: Sequence[int]) -> dict[int, str]:
        """The strings of a few term ids (by default from the whole lexicon)."""
        lex = self.load_lexicon()
        return {int(i): lex.terms[int(i)] for i in ids if 0 <= int(i) < len(lex.terms)}

    @abc.abstractmethod
    def save_lexicon(self, txn, lex: Lexicon, new_ids: Sequence[int], touched: set[int]) -> None: ...
