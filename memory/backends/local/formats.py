"""The three on-disk formats of a store file, one ``RecordFormat`` subclass each, chosen once at opening.

Format 3 (``Format3``, every store created now; ``create`` writes its schema):

- ``meta`` ``WITHOUT ROWID``; ``application`` = "hashmem", ``format_version`` (int as text),
  ``config`` (StoreConfig JSON), ``last_id`` (the highest record id ever assigned: ids are
  given from it, never reused), ``code_generation`` (hasher generation of every stored code: a
  refit re-encodes all of them in one transaction), ``record_count`` (counting a table
  without an index reads all its pages).
- ``records`` without a time or generation per record (``records``).
- ``batches(first_id INTEGER PRIMARY KEY, created REAL)``: the Unix time of each inserted
  batch; a record's creation time is its batch's (the batch with the largest ``first_id`` ≤
  its id): 8 B per record less than a time per record, and by SQLite's row layout ~16 B per
  batch (so a one-passage add takes ~7 B more than in format 2).
- ``lexicon`` front-coded with a tail (``lexicon``); namespaces as meta rows and metadata
  sets (``interning``); ``texts``, ``ivf_lists``, ``meta_sets`` and the namespace index
  created on first need; ``term_index`` (``sidetables``) created with a ``text``
  or ``llm`` store (any format: a store made before it has none).

Format 2 (``Format2``, read and written in its own layout): ``meta`` with a rowid; ``records``
with ``AUTOINCREMENT`` ids (the last in ``sqlite_sequence``), ``created REAL`` and ``gen
INTEGER`` per record; ``namespaces`` table; every table and the ``(namespace, id)`` index from
the start; lexicon blocks of ``\\n``-joined terms and uint32 frequencies.
Format 1 (``Format1``): as format 2, with ``terms(id, term, df)`` for the lexicon, namespace
names in ``records.namespace`` and no ``meta_sets``; ``ivf_lists`` is created on opening.

What it does not do: SQL every format shares (``records``), the connection (``sqlfile``).
"""

from __future__ import annotations

import sqlite3

import numpy as np

from ...config import FORMAT_VERSION, StoreConfig
from ...errors import ConfigError, StoreCorruptError, StoreError
from .interning import InlineNames, MetaSets, NamespaceMeta, NamespaceTable, NoMetaSets
from .lexicon import FrontCodedBlocks, LexiconBlocks, TermsTable
from .records import RecordFormat, id_array
from .sidetables import IVF_LISTS, TERMS
from .sqlfile import StoreFile

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    namespace INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    meta_set INTEGER NOT NULL DEFAULT 0,
    code BLOB NOT NULL,
    qvec BLOB NOT NULL,
    hints BLOB NOT NULL
);
CREATE TABLE batches (first_id INTEGER PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE lexicon (block INTEGER PRIMARY KEY, terms BLOB NOT NULL, df BLOB NOT NULL, tail BLOB);
"""


class Format3(RecordFormat):
    """Format 3: ids from meta ``last_id``, a creation time per batch, one code generation per store,
    the record count in meta; with at most one namespace (no namespace index yet), counts and ids
    by namespace need no scan."""

    version = 3
    batch_times = lexicon_blocks = meta_sets = namespace_ids = True
    names_type, sets_type, lexicon_type = NamespaceMeta, MetaSets, FrontCodedBlocks
    own_columns = ", id"
    created_sql = "(SELECT b.created FROM batches b WHERE b.first_id <= r.id ORDER BY b.first_id DESC LIMIT 1)"

    def last_id(self) -> int:
        return int(self.file.get_meta("last_id") or 0)

    def generation(self) -> int:
        """The generation of every code (0 before the first record)."""
        return int(self.file.get_meta("code_generation") or 0)

    def gen_sql(self, alias: str = "") -> str:
        return str(self.generation())

    def new_rows(self, conn: sqlite3.Connection, n: int, gen: int, now: float) -> list[tuple]:
        self._set_generation(conn, gen)
        row = conn.execute("SELECT value FROM meta WHERE key = 'last_id'").fetchone()
        first = int(row[0]) + 1 if row else 1  # ids never reused: one past the last ever assigned
        self.file.set_meta(conn, "last_id", str(first + n - 1))
        self._add_count(conn, n)
        return [(first + j,) for j in range(n)]

    def rows_added(self, conn: sqlite3.Connection, ids: list[int], now: float) -> None:
        if ids:
            conn.execute("INSERT INTO batches(first_id, created) VALUES (?, ?)", (ids[0], now))

    def rows_deleted(self, conn: sqlite3.Connection, n: int) -> None:
        self._add_count(conn, -n)

    def _add_count(self, conn: sqlite3.Connection, n: int) -> None:
        """Keep meta ``record_count``."""
        conn.execute("INSERT INTO meta(key, value) VALUES ('record_count', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value", (n,))

    def _set_generation(self, conn: sqlite3.Connection, gen: int) -> None:
        """Note the generation of codes being inserted; refuse a second one beside stored rows."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'code_generation'").fetchone()
        if row is not None and int(row[0]) == gen:
            return
        if row is not None and conn.execute("SELECT 1 FROM records LIMIT 1").fetchone():
            raise StoreError(f"{self.file.path}: codes of generation {gen} cannot join the stored ones of "
                             f"generation {int(row[0])}; reopen the store")
        self.file.set_meta(conn, "code_generation", str(int(gen)))

    def update_codes(self, conn: sqlite3.Connection, ids: np.ndarray, codes: np.ndarray, gen: int) -> None:
        """All codes share one generation: the caller re-encodes every row in this transaction
        (``Memory.refit``)."""
        conn.executemany("UPDATE records SET code = ? WHERE id = ?",
                         ((codes[j].tobytes(), int(ids[j])) for j in range(len(ids))))
        self.file.set_meta(conn, "code_generation", str(int(gen)))

    def rewrite_gen(self, conn: sqlite3.Connection, gen: int) -> tuple[str, tuple]:
        self._set_generation(conn, gen)  # one generation per store: nothing per record
        return "", ()

    def check_generation(self, generation: int) -> None:
        stored = self.generation()
        if self.count() and stored != generation:
            raise StoreCorruptError(f"{self.file.path}: the records hold codes of another hashing fit "
                                    f"(generation {stored}) than the stored one (generation {generation})")

    def _one_namespace(self) -> bool:
        """Whether the namespace index is still missing: then every record is in the one namespace."""
        return not self.file.has_index("records_namespace")

    def live_ids(self, namespace: str, upto: int) -> np.ndarray:
        if not self._one_namespace():
            return super().live_ids(namespace, upto)
        key = self.names.key(namespace)
        return id_array(self.file.conn.execute(
            "SELECT id FROM records WHERE id <= ? AND ? IS NOT NULL ORDER BY id", (upto, key)))

    def count(self, namespace: str | None = None) -> int:
        if not self._one_namespace():
            return super().count(namespace)
        total = int(self.file.get_meta("record_count") or 0)  # the kept count
        if namespace is None:
            return total
        return total if self.names.key(namespace) is not None else 0

    def namespaces(self) -> dict[str, int]:
        if not self._one_namespace():
            return super().namespaces()
        n = self.count()
        return {self.names.name(1): n} if n else {}


class Format2(RecordFormat):
    """Format 2: AUTOINCREMENT ids, a creation time and a code generation per record."""

    version = 2
    lexicon_blocks = meta_sets = namespace_ids = True
    names_type, sets_type, lexicon_type = NamespaceTable, MetaSets, LexiconBlocks
    own_columns = ", gen, created"

    def __init__(self, file: StoreFile) -> None:
        super().__init__(file)
        if not file.readonly and "ivf_lists" not in file.tables:
            file.conn.execute(IVF_LISTS)  # format 1 stores predate the table: created on opening

    def last_id(self) -> int:
        row = self.file.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        return 0 if row is None else int(row[0])

    def gen_sql(self, alias: str = "") -> str:
        return f"{alias}gen"

    def new_rows(self, conn: sqlite3.Connection, n: int, gen: int, now: float) -> list[tuple]:
        return [(gen, now)] * n

    def update_codes(self, conn: sqlite3.Connection, ids: np.ndarray, codes: np.ndarray, gen: int) -> None:
        conn.executemany(
            "UPDATE records SET code = ?, gen = ? WHERE id = ?",
            ((codes[j].tobytes(), gen, int(ids[j])) for j in range(len(ids))),
        )

    def rewrite_gen(self, conn: sqlite3.Connection, gen: int) -> tuple[str, tuple]:
        return ", gen = ?", (int(gen),)

    def check_generation(self, generation: int) -> None:
        mixed = self.file.conn.execute("SELECT count(*) FROM records WHERE gen != ?", (generation,)).fetchone()[0]
        if mixed:
            raise StoreCorruptError(
                f"{self.file.path}: {mixed} records hold codes of another hashing fit than the "
                f"stored one (generation {generation})"
            )


class Format1(Format2):
    """Format 1 (hashmem 0.1): as format 2, with a ``terms`` table, namespace names and no metadata sets."""

    version = 1
    lexicon_blocks = meta_sets = namespace_ids = False
    names_type, sets_type, lexicon_type = InlineNames, NoMetaSets, TermsTable


def open_format(file: StoreFile) -> RecordFormat:
    """The format of a file by the tables found at opening: a new (empty) file is format 3."""
    if not file.tables or "batches" in file.tables:
        return Format3(file)
    return Format2(file) if "lexicon" in file.tables else Format1(file)


def create(file: StoreFile, config: StoreConfig, extra_meta: dict[str, bytes | str] | None = None) -> bool:
    """Create the format 3 schema and write the config (and ``extra_meta``), in one transaction.

    Returns:
        True if this call created the store; False if another process created it first
        (then nothing is written).
    """
    with file.transaction() as c:
        if c.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]:
            return False
        for stmt in SCHEMA.strip().split(";"):
            if stmt.strip():
                c.execute(stmt)
        if config.fidelity in ("text", "llm"):  # the term index: from the first record on, or never
            c.execute(TERMS)
        c.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [
                ("application", "hashmem"),
                ("format_version", str(FORMAT_VERSION)),
                ("config", config.to_json()),
                ("lexicon_docs", "0"),
                *(extra_meta or {}).items(),
            ],
        )
    return True


def load_config(file: StoreFile) -> StoreConfig:
    """The store's config, once the meta table says it is a hashmem store this version can read.

    Raises:
        StoreCorruptError: not a hashmem store, or an unreadable config.
        StoreError: a newer format than this hashmem understands.
    """
    try:
        app = file.get_meta("application")
        version = file.get_meta("format_version")
        raw = file.get_meta("config")
    except sqlite3.DatabaseError as e:
        raise StoreCorruptError(f"{file.path} is corrupted ({e})") from e
    if app != "hashmem" or raw is None or version is None:
        raise StoreCorruptError(f"{file.path} is not a hashmem store (its meta table is incomplete)")
    if int(version) > FORMAT_VERSION:
        raise StoreError(
            f"{file.path} has format version {version}, newer than this hashmem "
            f"understands ({FORMAT_VERSION}); upgrade hashmem"
        )
    try:
        return StoreConfig.from_json(raw)
    except (ValueError, TypeError, ConfigError) as e:
        raise StoreCorruptError(f"{file.path} has an unreadable config ({e})") from e
