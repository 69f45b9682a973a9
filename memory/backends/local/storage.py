"""SQLite persistence: records, the store config, the lexicon; the only module that knows SQL.

File layout (one SQLite database, WAL journal), format 3 (formats 1 and 2 below):

- ``meta(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID``: ``application`` = "hashmem",
  ``format_version`` (int as text), ``config`` (StoreConfig JSON), ``hasher``
  (``np.savez_compressed`` archive; its float16 projection as two byte planes, see
  ``hashing``) and ``quantizer`` (``np.savez`` archive), ``lexicon_docs`` (passages
  the lexicon has counted), ``lexicon_terms`` (its terms), ``last_id`` (the highest
  record id ever assigned), ``code_generation`` (hasher generation of every stored
  code: a refit re-encodes all of them in one transaction), ``record_count``
  (counting a table without an index reads all its pages), ``namespace:<name>``
  (the namespace's id).
- ``records(id INTEGER PRIMARY KEY, namespace INTEGER (id), metadata TEXT (JSON
  object, compact), meta_set INTEGER, code BLOB (packed bits, bits/8 bytes, see
  ``hashing``), qvec BLOB (int8 × dim), hints BLOB (msgpack, see ``hints``))``.
  Ids are assigned from ``last_id`` and never reused.
- ``batches(first_id INTEGER PRIMARY KEY, created REAL)``: the Unix time of each
  inserted batch; a record's creation time is its batch's (the batch with the
  largest ``first_id`` ≤ its id): 8 B per record less than a time per record, and by
  SQLite's row layout ~16 B per batch (so a one-passage add takes ~7 B more than in format 2).
- ``lexicon(block INTEGER PRIMARY KEY, terms BLOB, df BLOB, tail BLOB)``: the lexicon in
  blocks of ``LEXICON_BLOCK`` consecutive term ids (block ``b`` holds ids ``b *
  LEXICON_BLOCK`` …); ``terms`` is zstd of the block's terms front-coded
  (``lexicon_codec.front_encode``: shared-prefix bytes, then the rests; a batch's new terms get
  consecutive ids in sorted order, ``hints.Lexicon.observe``): level 19 once the block
  is full; while it grows, its older terms at level 9 and its newest (at most
  ``LEXICON_TAIL``) in ``tail`` at level 3, so an add compresses only the tail
  (``Storage._grow_block``). ``df`` is zstd of their document
  frequencies (``lexicon_codec.pack_df``: one byte each, larger ones listed after). One copy of each term: no
  index on the term (the in-memory ``Lexicon`` maps term → id). A block is rewritten
  by a delete then an insert, so its old pages are reused at once.
- created on first need: ``meta_sets(id INTEGER PRIMARY KEY, json TEXT)``: metadata
  shared by several records, stored once (interned): a record's metadata is its
  ``meta_set``'s JSON object (0: none) plus its own ``metadata``, with disjoint
  keys. A string value that two records of one batch share (``source`` of a
  file's passages, ``--meta`` values) goes to the set; the rest stays per record.
  Sets are never deleted (they are few and small). ``texts(id INTEGER PRIMARY KEY,
  body BLOB)``: exact passages, only for the ``text`` fidelity tier.
  ``ivf_lists(id INTEGER PRIMARY KEY, list INTEGER)``: see ``memory.partition``.
  ``records_namespace`` (index on ``records(namespace)``): when a second namespace
  appears; with one, every query by namespace reads the whole table anyway.

Format 2 stores (read and written in their own layout): ``meta`` with a rowid;
``records`` with ``AUTOINCREMENT`` ids, ``created REAL`` and ``gen INTEGER`` per
record; ``namespaces(id INTEGER PRIMARY KEY, name TEXT)``; every table and the
``(namespace, id)`` index from the start; lexicon blocks of ``LEXICON_BLOCK_2``
terms joined by ``"\\n"``, frequencies uint32 little-endian; an uncompressed hasher.
Format 1 stores keep ``terms(id INTEGER PRIMARY KEY, term TEXT UNIQUE, df INTEGER)``,
namespace names in ``records.namespace`` and no ``meta_sets``.

Stores are created with 16 KiB pages (measured against 4 and 8 KiB in
``benchmarks/store_size.py``: records of ~500 bytes waste more of smaller pages).
``file_parts`` attributes every byte of the file to a part through SQLite's ``dbstat`` table.

Every write happens in one ``BEGIN IMMEDIATE … COMMIT`` transaction, so a killed
process loses at most the batch it was writing; creating a store is one such
transaction (schema, settings and hashing parameters together). Writers from
several processes wait for each other's write lock up to ``BUSY_TIMEOUT`` seconds.
A file is checked to be a hashmem store before anything in it changes (no WAL
switch on another application's database). ``PRAGMA data_version`` tells an open
handle that another process committed. SQLite failures inside a write (disk
full, I/O errors) and a store file deleted or replaced under the open handle
become a ``StoreError`` naming the cause, after the rollback.

What it does not do: embed, hash or rank. Its interface stays small (put, get,
delete, iterate codes, config) so another backend can replace it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ...config import FORMAT_VERSION, StoreConfig
from ...errors import ConfigError, StoreCorruptError, StoreError, reading_stored
from ...filters import Where
from ...hints import Lexicon
from ..base import Row
from . import sqlconn
from .lexicon_codec import front_decode, front_pack, front_parts, pack_df, unpack_df

_SCHEMA = """
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
# created when first needed (format 3); format 1 and 2 stores have them from the start
_META_SETS = "CREATE TABLE IF NOT EXISTS meta_sets (id INTEGER PRIMARY KEY, json TEXT NOT NULL)"
_TEXTS = "CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"
_IVF_LISTS = "CREATE TABLE IF NOT EXISTS ivf_lists (id INTEGER PRIMARY KEY, list INTEGER NOT NULL)"
_NS_INDEX = "CREATE INDEX IF NOT EXISTS records_namespace ON records(namespace)"
_NS_PREFIX = "namespace:"  # format 3: meta key of a namespace's id
_NS_RANGE = "key >= 'namespace:' AND key < 'namespace;'"  # ';' follows ':'
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's write lock
_INT64_MAX = 2**63 - 1
PAGE_SIZE = 16384
LEXICON_BLOCK = 65536  # term ids per lexicon block (format 3)
LEXICON_BLOCK_2 = 8192  # term ids per lexicon block of a format 2 store
LEXICON_TAIL = 8192  # format 3: a growing block's newest terms, compressed apart until there are more


def _describe(path: Path, exc: Exception) -> str:
    return f"{path}: {exc}"


class Storage:
    """One open hashmem SQLite file.

    Args:
        path: the file.
        create: allow a missing (or empty) file, to be created by ``initialize``.
        readonly: open for reading only: nothing in the file changes (no WAL switch, no
            checkpoint); on a read-only filesystem or directory the file is opened
            ``immutable`` (no -wal/-shm needed; sound because nobody can write there, but
            a -wal left there by a writer that crashed is not read: its last commits are
            not seen until a writable open checkpoints them).
        busy_timeout: seconds a write waits for another process's write lock before
            giving up with a StoreError.
        durable: ``synchronous=FULL``: every commit is synced to disk before it returns,
            so a power loss keeps it too (default ``NORMAL``: a power loss may drop the
            last commits, never the file's consistency).
    """

    def __init__(self, path: str | os.PathLike, *, create: bool, readonly: bool = False,
                 busy_timeout: float = BUSY_TIMEOUT, durable: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; give a file path for the store")
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path} is not a regular file (a pipe, device or socket); give a file path")
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and (not create or readonly):
            raise StoreError(f"no store at {self.path}; create one with `hashmem init` or Memory(path)")
        if not exists and not self.path.parent.exists():
            raise StoreError(f"directory {self.path.parent} does not exist; create it first")
        if exists and not os.access(self.path, os.R_OK):
            raise StoreError(f"cannot read {self.path}: permission denied")
        self.readonly = readonly or (exists and not os.access(self.path, os.W_OK))
        self.busy_timeout = busy_timeout
        self._closed = False
        self._inode = None
        try:
            self.conn = sqlite3.connect(self._uri(), uri=True, isolation_level=None, check_same_thread=False,
                                        timeout=busy_timeout, factory=sqlconn.Connection)
            self.conn.path = str(self.path)  # named when a damaged page shows (sqlconn)
            # look before changing anything: a foreign SQLite file must not be switched to WAL
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and not ({"meta", "records"} <= tables and tables & {"terms", "lexicon"}):
                self.close_quietly()
                raise StoreCorruptError(f"{self.path} is an SQLite file but not a hashmem store")
            if not tables and not self.readonly:  # before the first table: an existing store keeps its page size
                self.conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            if not self.readonly:
                self._switch_to_wal()
                self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except StoreCorruptError:
            self.close_quietly()
            raise
        except sqlite3.DatabaseError as e:
            self.close_quietly()
            if "not a database" in str(e) or "malformed" in str(e):
                raise StoreCorruptError(f"{self.path} is not a hashmem store or is corrupted ({e})") from e
            raise StoreError(_describe(self.path, e)) from e
        self.is_new = not tables
        self.batch_times = not tables or "batches" in tables  # format 3: creation times per batch
        if tables and not self.batch_times and not self.readonly and "ivf_lists" not in tables:
            self.conn.execute(_IVF_LISTS)  # format 1 stores predate the table: created on opening
        self._tables = tables
        self.lexicon_blocks = not tables or "lexicon" in tables  # format 2; format 1 has ``terms``
        self.meta_sets = self.batch_times or "meta_sets" in tables  # format 2 and 3: interned metadata
        # format 2 and 3: records.namespace is an id (format 2: table ``namespaces``, 3: meta ``namespace:<name>``)
        self.namespace_ids = self.batch_times or "namespaces" in tables
        self._ns_names: dict[int, str] = {}  # namespace id → name, of committed namespaces
        self._term_blocks: dict[int, list[str]] = {}  # full lexicon blocks (immutable), decompressed
        self._partial_block: tuple = (None, -1, [])  # (lexicon_terms count, block, terms) of the last block
        self._front_cache: tuple | None = None  # ((block, start), terms, shared, rest) last coded
        self._remember_inode()

    def _switch_to_wal(self) -> None:
        """``PRAGMA journal_mode=WAL``, waiting for another process that is creating the same store.

        SQLite does not call the busy handler for a journal-mode change, so while another
        process holds the lock of its creating transaction the pragma fails at once with
        "database is locked": it is tried again until ``busy_timeout`` has passed.
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as e:
                if not ("locked" in str(e) or "busy" in str(e)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _has_index(self) -> bool:
        """Format 3: whether the namespace index exists (it does once a second namespace does)."""
        if "records_namespace" in self._tables:
            return True
        found = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name = 'records_namespace'"
                                  ).fetchone()
        if found and not self.conn.in_transaction:
            self._tables.add("records_namespace")
        return found is not None

    def _has(self, table: str) -> bool:
        """Whether a table created on first need (format 3: texts, ivf_lists) exists now.

        Tables are never dropped, so a yes is remembered — unless seen inside a write
        transaction, which may still roll back.
        """
        if table in self._tables:
            return True
        found = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name = ?", (table,)).fetchone()
        if found and not self.conn.in_transaction:
            self._tables.add(table)
        return found is not None

    def _uri(self) -> str:
        quoted = urllib.parse.quote(str(self.path.absolute()))
        if not self.readonly:
            return f"file:{quoted}"
        if os.access(self.path.parent, os.W_OK) and os.access(self.path, os.W_OK):
            return f"file:{quoted}?mode=ro"  # a reader among writers: sees their commits
        return f"file:{quoted}?immutable=1"  # read-only filesystem: nobody writes, no -wal/-shm needed

    def _remember_inode(self) -> None:
        try:
            self._inode = (self.path.stat().st_dev, self.path.stat().st_ino)
        except OSError:
            self._inode = None

    def _check_file(self) -> None:
        """Fail loudly when the store's file was deleted or replaced under this open handle."""
        try:
            st = self.path.stat()
            now = (st.st_dev, st.st_ino)
        except OSError:
            now = None
        if self._inode is not None and now != self._inode:
            what = "deleted" if now is None else "replaced by another file"
            raise StoreError(f"{self.path} was {what} while this process had it open; "
                             "nothing was written — reopen the store")

    def close_quietly(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - best effort while reporting another error
            pass

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self.conn.close()
        self._closed = True

    # -- transactions -----------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception (nested: joins the open one).

        Waits up to ``busy_timeout`` seconds for another process's write lock. SQLite
        errors inside become a StoreError naming the real cause (e.g. "database or disk
        is full"); the file is checked (same inode) before the commit, so a store deleted
        or replaced under an open handle is never written to silently.

        Raises:
            StoreError: read-only, busy too long, the file vanished, or SQLite failed.
        """
        if self.readonly:
            raise StoreError(f"cannot write {self.path}: opened read-only (or the file is read-only)")
        if self.conn.in_transaction:  # called inside this handle's own write: join it
            yield self.conn
            return
        self._check_file()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreError(f"cannot write {self.path}: another process held its write lock for more "
                                 f"than {self.busy_timeout:g} s ({e})") from e
            raise StoreError(f"cannot write {self.path}: {e}") from e
        try:
            yield self.conn
            self._check_file()
        except sqlite3.Error as e:
            self._rollback()
            raise StoreError(f"cannot write {self.path}: {e}; nothing from this batch was stored") from e
        except BaseException:
            self._rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise StoreError(f"cannot write {self.path}: {e}; nothing from this batch was stored") from e

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (SQLite ends it by itself after some errors)."""
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:  # the original error is the one to report
                pass

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes whenever another connection commits."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def last_id(self) -> int:
        """The highest record id ever assigned (ids are never reused); 0 for a new store."""
        if self.batch_times:  # format 3: ids are assigned by insert, the last one kept in meta
            return int(self.get_meta("last_id") or 0)
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        return 0 if row is None else int(row[0])

    # -- config and meta ---------------------------------------------------------------

    def initialize(self, config: StoreConfig, extra_meta: dict[str, bytes | str] | None = None) -> bool:
        """Create the schema and write the config (and ``extra_meta``) of a new store, in one transaction.

        Returns:
            True if this call created the store; False if another process created it
            first (then nothing is written and the caller opens the existing store).
        """
        with self.transaction() as c:
            if c.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]:
                self.is_new = False
                return False
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    c.execute(stmt)
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
        self.is_new = False
        return True

    def get_meta(self, key: str) -> bytes | str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, conn: sqlite3.Connection, key: str, value: bytes | str) -> None:
        """Write one meta value inside the caller's transaction."""
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def load_config(self) -> StoreConfig:
        try:
            app = self.get_meta("application")
            version = self.get_meta("format_version")
            raw = self.get_meta("config")
        except sqlite3.DatabaseError as e:
            raise StoreCorruptError(f"{self.path} is corrupted ({e})") from e
        if app != "hashmem" or raw is None or version is None:
            raise StoreCorruptError(f"{self.path} is not a hashmem store (its meta table is incomplete)")
        if int(version) > FORMAT_VERSION:
            raise StoreError(
                f"{self.path} has format version {version}, newer than this hashmem "
                f"understands ({FORMAT_VERSION}); upgrade hashmem"
            )
        try:
            return StoreConfig.from_json(raw)
        except (ValueError, TypeError, ConfigError) as e:
            raise StoreCorruptError(f"{self.path} has an unreadable config ({e})") from e

    def check(self, *, bits: int, dim: int, generation: int | None, full: bool = False) -> None:
        """Integrity check: SQLite's own, then the records' shapes and code generation.

        Raises:
            StoreCorruptError: naming what is wrong.
        """
        try:
            pragma = "integrity_check" if full else "quick_check"
            result = [r[0] for r in self.conn.execute(f"PRAGMA {pragma}")]
            if result != ["ok"]:
                raise StoreCorruptError(f"{self.path} fails SQLite's {pragma}: {'; '.join(result[:3])}")
            bad = self.conn.execute(
                "SELECT count(*) FROM records WHERE length(code) != ? OR length(qvec) != ?",
                (bits // 8, dim),
            ).fetchone()[0]
            if bad:
                raise StoreCorruptError(f"{self.path}: {bad} records have codes or vectors of the wrong size")
            if generation is not None and self.batch_times:
                stored = self._generation()
                if self.count() and stored != generation:
                    raise StoreCorruptError(f"{self.path}: the records hold codes of another hashing fit "
                                            f"(generation {stored}) than the stored one (generation {generation})")
            elif generation is not None:
                mixed = self.conn.execute(
                    "SELECT count(*) FROM records WHERE gen != ?", (generation,)
                ).fetchone()[0]
                if mixed:
                    raise StoreCorruptError(
                        f"{self.path}: {mixed} records hold codes of another hashing fit than the "
                        f"stored one (generation {generation})"
                    )
        except sqlite3.DatabaseError as e:
            raise StoreCorruptError(f"{self.path} is corrupted ({e})") from e

    # -- records -----------------------------------------------------------------------

    def insert(
        self,
        conn: sqlite3.Connection,
        *,
        namespace: str,
        metadata: Sequence[dict],
        codes: np.ndarray,
        qvecs: np.ndarray,
        hints: Sequence[bytes],
        gen: int,
        texts: Sequence[bytes] | None = None,
    ) -> list[int]:
        """Insert records inside the caller's transaction; returns their new ids in order."""
        now = time.time()
        ids = []
        sets, own = self._intern_metadata(conn, metadata)
        ns = self._ns_key(namespace, conn=conn)
        # format 3: the creation time is stored once per batch (``batches``) and the code generation
        # once per store (meta ``code_generation``: a refit re-encodes every row in one transaction)
        if self.batch_times:
            self._set_generation(conn, gen)
        cols = "namespace, metadata, code, qvec, hints" + (", id" if self.batch_times else ", gen, created")
        cols += ", meta_set" if self.meta_sets else ""
        sql = f"INSERT INTO records({cols}) VALUES ({', '.join('?' * (cols.count(',') + 1))})"
        if self.batch_times:  # ids never reused: one past the last ever assigned
            row = conn.execute("SELECT value FROM meta WHERE key = 'last_id'").fetchone()
            first = int(row[0]) + 1 if row else 1
            self.set_meta(conn, "last_id", str(first + len(hints) - 1))
            self._add_count(conn, len(hints))
        for j in range(len(hints)):
            cur = conn.execute(
                sql,
                (
                    ns,
                    json.dumps(own[j], ensure_ascii=False, sort_keys=True, separators=(",", ":")),
                    codes[j].tobytes(),
                    qvecs[j].tobytes(),
                    hints[j],
                    *((first + j,) if self.batch_times else (gen, now)),
                    *((sets[j],) if self.meta_sets else ()),
                ),
            )
            ids.append(cur.lastrowid)
        if self.batch_times and ids:
            conn.execute("INSERT INTO batches(first_id, created) VALUES (?, ?)", (ids[0], now))
        if texts is not None:
            conn.execute(_TEXTS)
            conn.executemany("INSERT INTO texts(id, body) VALUES (?, ?)", zip(ids, texts, strict=True))
        return ids

    def _add_count(self, conn: sqlite3.Connection, n: int) -> None:
        """Format 3: keep meta ``record_count`` (counting a table without an index reads all its pages)."""
        conn.execute("INSERT INTO meta(key, value) VALUES ('record_count', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value", (n,))

    def _generation(self) -> int:
        """The generation of every code of a format 3 store (0 before the first record)."""
        return int(self.get_meta("code_generation") or 0)

    def _set_generation(self, conn: sqlite3.Connection, gen: int) -> None:
        """Format 3: note the generation of codes being inserted; refuse a second one beside stored rows."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'code_generation'").fetchone()
        if row is not None and int(row[0]) == gen:
            return
        if row is not None and conn.execute("SELECT 1 FROM records LIMIT 1").fetchone():
            raise StoreError(f"{self.path}: codes of generation {gen} cannot join the stored ones of "
                             f"generation {int(row[0])}; reopen the store")
        self.set_meta(conn, "code_generation", str(int(gen)))

    def _ns_key(self, name: str, *, conn: sqlite3.Connection | None = None) -> int | str | None:
        """What ``records.namespace`` holds for a name: its id (format 2; None if unknown), or the name.

        With ``conn`` (inside a write transaction) an unknown namespace is created.
        """
        if not self.namespace_ids:
            return name
        if self.batch_times:  # format 3: meta rows ``namespace:<name>`` → id
            row = (conn or self.conn).execute("SELECT value FROM meta WHERE key = ?", (_NS_PREFIX + name,)).fetchone()
            if row is None and conn is not None:
                n = conn.execute(f"SELECT count(*) FROM meta WHERE {_NS_RANGE}").fetchone()[0]
                if n:
                    conn.execute(_NS_INDEX)  # a second namespace; with one, no index is needed
                self.set_meta(conn, _NS_PREFIX + name, str(n + 1))
                return n + 1
            return None if row is None else int(row[0])
        row = (conn or self.conn).execute("SELECT id FROM namespaces WHERE name = ?", (name,)).fetchone()
        if row is None and conn is not None:
            return conn.execute("INSERT INTO namespaces(name) VALUES (?)", (name,)).lastrowid
        return None if row is None else row[0]

    def _ns_name(self, key: int | str) -> str:
        if not self.namespace_ids:
            return key
        if key not in self._ns_names:
            if self.batch_times:
                self._ns_names = {int(v): k[len(_NS_PREFIX):] for k, v in
                                  self.conn.execute(f"SELECT key, value FROM meta WHERE {_NS_RANGE}")}
            else:
                self._ns_names = dict(self.conn.execute("SELECT id, name FROM namespaces"))
        return self._ns_names[key]

    def _intern_metadata(self, conn: sqlite3.Connection, metadata: Sequence[dict]) -> tuple[list[int], list[dict]]:
        """(meta_set id per record, own metadata per record): string values two records share go to a set."""
        if not self.meta_sets:
            return [0] * len(metadata), list(metadata)
        seen = Counter((k, v) for m in metadata for k, v in m.items() if isinstance(v, str))
        found: dict[str, int] = {}
        sets, own = [], []
        for m in metadata:
            shared = {k: v for k, v in m.items() if isinstance(v, str) and seen[(k, v)] > 1}
            own.append({k: v for k, v in m.items() if k not in shared})
            if not shared:
                sets.append(0)
                continue
            key = json.dumps(shared, ensure_ascii=False, sort_keys=True)
            if not found:
                conn.execute(_META_SETS)  # format 3: created with the first set
            if key not in found:
                row = conn.execute("SELECT id FROM meta_sets WHERE json = ?", (key,)).fetchone()
                found[key] = row[0] if row else conn.execute(
                    "INSERT INTO meta_sets(json) VALUES (?)", (key,)).lastrowid
            sets.append(found[key])
        return sets, own

    def fetch(self, ids: Sequence[int]) -> dict[int, Row]:
        """Rows by id (missing ids, and ids no record can have, are absent from the result)."""
        out: dict[int, Row] = {}
        sets = self.meta_sets and self._has("meta_sets")
        shared = "s.json" if sets else "NULL"
        join = "LEFT JOIN meta_sets s ON s.id = r.meta_set " if sets else ""
        gen = str(self._generation()) if self.batch_times else "r.gen"
        created = ("(SELECT b.created FROM batches b WHERE b.first_id <= r.id ORDER BY b.first_id DESC LIMIT 1)"
                   if self.batch_times else "r.created")
        for chunk in _chunks([i for i in ids if 0 < i <= _INT64_MAX], 900):
            q = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                f"SELECT r.id, r.namespace, {created}, r.metadata, r.code, r.qvec, r.hints, {gen}, {shared} "
                f"FROM records r {join}WHERE r.id IN ({q})",
                chunk,
            ).fetchall():  # one call of the guarded cursor (memory/backends/local/sqlconn.py), not one per row
                with reading_stored(f"the metadata of record {r[0]}"):
                    meta = json.loads(r[3])
                    if r[8] is not None:
                        meta = dict(sorted({**json.loads(r[8]), **meta}.items()))
                out[r[0]] = Row(r[0], self._ns_name(r[1]), r[2], meta, r[4], r[5], r[6], r[7])
        return out

    def fetch_present_qvecs(self, ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask bool [len(ids)] of ids that exist, int8 [mask.sum(), dim] their vectors in the order of ids).

        For readers racing another process's delete: a missing id is left out, never garbage.
        """
        found: dict[int, bytes] = {}
        for chunk in _chunks([int(i) for i in ids], 900):
            q = ",".join("?" * len(chunk))
            found.update(self.conn.execute(f"SELECT id, qvec FROM records WHERE id IN ({q})", chunk).fetchall())
        mask = np.array([int(i) in found for i in ids], dtype=bool)
        blob = b"".join(found[int(i)] for i in np.asarray(ids)[mask])
        return mask, np.frombuffer(blob, dtype=np.int8).reshape(int(mask.sum()), dim)

    def fetch_qvecs(self, ids: Sequence[int], dim: int) -> np.ndarray:
        """int8 [len(ids), dim] vectors in the order of ids (all must exist)."""
        out = np.empty((len(ids), dim), dtype=np.int8)
        pos = {i: j for j, i in enumerate(ids)}
        for chunk in _chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            for i, blob in self.conn.execute(f"SELECT id, qvec FROM records WHERE id IN ({q})", chunk).fetchall():
                out[pos[i]] = np.frombuffer(blob, dtype=np.int8)
        return out

    def fetch_texts(self, ids: Sequence[int]) -> dict[int, bytes]:
        out = {}
        if not self._has("texts"):
            return out
        for chunk in _chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            out.update(self.conn.execute(f"SELECT id, body FROM texts WHERE id IN ({q})", chunk).fetchall())
        return out

    def iter_codes(self, *, batch: int = 65536, after: int = -1,
                   upto: int = _INT64_MAX) -> Iterator[tuple[np.ndarray, list[str], list[bytes], np.ndarray]]:
        """(ids int64, namespaces, code blobs, gens int64) of ids in (after, upto], in id order, in batches."""
        gen = str(self._generation()) if self.batch_times else "gen"
        last = after
        while True:
            rows = self.conn.execute(
                f"SELECT id, namespace, code, {gen} FROM records WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (last, upto, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield (
                np.array([r[0] for r in rows], dtype=np.int64),
                [self._ns_name(r[1]) for r in rows],
                [r[2] for r in rows],
                np.array([r[3] for r in rows], dtype=np.int64),
            )

    def iter_qvecs(self, dim: int, *, namespace: str | None = None, batch: int = 65536, after: int = -1,
                   upto: int = _INT64_MAX) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64 [b], int8 [b, dim]) over all records (or one namespace's) with ids in (after, upto], in id order."""
        where, args = ("namespace = ? AND ", (self._ns_key(namespace),)) if namespace is not None else ("", ())
        last = after
        while True:
            rows = self.conn.execute(
                f"SELECT id, qvec FROM records WHERE {where}id > ? AND id <= ? ORDER BY id LIMIT ?",
                (*args, last, upto, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.int8).reshape(len(rows), dim)
            yield ids, vecs

    def sample_qvecs(self, dim: int, n: int, *, seed: int = 0) -> np.ndarray:
        """int8 [min(n, count), dim]: a deterministic sample of stored vectors."""
        total = self.count()
        if total <= n:
            return np.concatenate([v for _, v in self.iter_qvecs(dim)] or [np.zeros((0, dim), np.int8)])
        rng = np.random.default_rng(seed)
        all_ids = np.array([r[0] for r in self.conn.execute("SELECT id FROM records")], dtype=np.int64)
        pick = np.sort(rng.choice(all_ids, size=n, replace=False))
        return self.fetch_qvecs(pick.tolist(), dim)

    def update_codes(self, conn: sqlite3.Connection, ids: np.ndarray, codes: np.ndarray, gen: int) -> None:
        """Overwrite codes and their generation inside the caller's transaction.

        In a format 3 store all codes share one generation: the caller re-encodes every row
        in this transaction (``Memory.refit``).
        """
        if self.batch_times:
            conn.executemany("UPDATE records SET code = ? WHERE id = ?",
                             ((codes[j].tobytes(), int(ids[j])) for j in range(len(ids))))
            self.set_meta(conn, "code_generation", str(int(gen)))
            return
        conn.executemany(
            "UPDATE records SET code = ?, gen = ? WHERE id = ?",
            ((codes[j].tobytes(), gen, int(ids[j])) for j in range(len(ids))),
        )

    def delete(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[int, str]]:
        """Delete records inside the caller's transaction; returns (id, namespace) of those that existed.

        Bumps the meta counter ``deletes`` when something was deleted, so other processes'
        open handles know to drop those ids (``deletes_count``).
        """
        gone = []
        for chunk in _chunks(sorted({i for i in ids if 0 < i <= _INT64_MAX}), 900):
            q = ",".join("?" * len(chunk))
            gone += [(i, self._ns_name(ns)) for i, ns in
                     conn.execute(f"SELECT id, namespace FROM records WHERE id IN ({q})", chunk)]
            conn.execute(f"DELETE FROM records WHERE id IN ({q})", chunk)
            if self._has("texts"):
                conn.execute(f"DELETE FROM texts WHERE id IN ({q})", chunk)
            if self._has("ivf_lists"):
                conn.execute(f"DELETE FROM ivf_lists WHERE id IN ({q})", chunk)
        if gone and self.batch_times:
            self._add_count(conn, -len(gone))
        if gone:
            conn.execute("INSERT INTO meta(key, value) VALUES ('deletes', 1) "
                         "ON CONFLICT(key) DO UPDATE SET value = value + 1")
        return gone

    def deletes_count(self) -> int:
        """How many delete transactions removed records (ever); see ``delete``."""
        return int(self.get_meta("deletes") or 0)

    def live_ids(self, namespace: str, upto: int) -> np.ndarray:
        """int64 ids of a namespace's records with id <= upto, ascending."""
        key = self._ns_key(namespace)
        if self.batch_times and not self._has_index():  # format 3, one namespace: every record is in it
            cur = self.conn.execute("SELECT id FROM records WHERE id <= ? AND ? IS NOT NULL ORDER BY id", (upto, key))
        else:
            cur = self.conn.execute("SELECT id FROM records WHERE namespace = ? AND id <= ? ORDER BY id", (key, upto))
        parts = []
        while rows := cur.fetchmany(65536):
            parts.append(np.array([r[0] for r in rows], dtype=np.int64))
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    # -- IVF lists of vector partitions (memory.partition) -------------------------------

    def set_lists(self, conn: sqlite3.Connection, ids: Sequence[int], lists: Sequence[int]) -> None:
        """Record (or replace) the IVF list of records inside the caller's transaction."""
        conn.execute(_IVF_LISTS)
        conn.executemany("INSERT OR REPLACE INTO ivf_lists(id, list) VALUES (?, ?)",
                         zip((int(i) for i in ids), (int(x) for x in lists), strict=True))

    def lists_of(self, namespace: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, lists int32) of a namespace's records that have a list (none before a partition)."""
        if not self._has("ivf_lists"):
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        cur = self.conn.execute(
            "SELECT l.id, l.list FROM ivf_lists l JOIN records r ON r.id = l.id WHERE r.namespace = ? ORDER BY l.id",
            (self._ns_key(namespace),),
        )
        parts = []  # 64k rows at a time: never a million Python tuples at once
        while rows := cur.fetchmany(65536):
            parts.append(np.array(rows, dtype=np.int64))
        arr = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
        return arr[:, 0].copy(), arr[:, 1].astype(np.int32)

    def filter_ids(self, namespace: str, where: Where) -> list[int]:
        """Ids in a namespace whose metadata equals every key/value of a checked ``where``
        (``filters.Where``: exact JSON types, keys and values bound as parameters).

        A record's metadata is its own object merged with its interned ``meta_set``
        (disjoint keys; sets hold only strings, so the merge keeps the record's explicit nulls).
        """
        sets = self.meta_sets and self._has("meta_sets")
        join = "LEFT JOIN meta_sets s ON s.id = r.meta_set " if sets else ""
        clauses, args = where.to_sql("json_patch(r.metadata, coalesce(s.json, '{}'))" if sets else "r.metadata")
        clauses, args = ["r.namespace = ?", *clauses], [self._ns_key(namespace), *args]
        sql = f"SELECT r.id FROM records r {join}WHERE {' AND '.join(clauses)}"  # only fixed clause texts are joined
        return [r[0] for r in self.conn.execute(sql, args)]

    # -- lexicon -----------------------------------------------------------------------

    def load_lexicon(self) -> Lexicon:
        lex = Lexicon(n_docs=int(self.get_meta("lexicon_docs") or 0))
        if self.lexicon_blocks:
            size = self._lexicon_block()
            tail = "tail" if self.batch_times else "NULL"
            for expected, (b, terms_blob, df_blob, tail_blob) in enumerate(
                self.conn.execute(f"SELECT block, terms, df, {tail} FROM lexicon ORDER BY block")
            ):
                terms, df = self._unpack_block(b, terms_blob, df_blob, tail_blob)
                if b != expected or (len(lex.terms) % size and terms):
                    raise StoreCorruptError(f"{self.path}: the lexicon has a gap at block {expected}")
                lex.terms += terms
                lex.df += df.tolist()
            lex.ids.update((t, i) for i, t in enumerate(lex.terms))
            if len(lex.ids) != len(lex.terms):
                raise StoreCorruptError(f"{self.path}: the lexicon holds a term twice")
            return lex
        rows = self.conn.execute("SELECT id, term, df FROM terms ORDER BY id").fetchall()
        for expected, (i, term, df) in enumerate(rows):
            if i != expected:
                raise StoreCorruptError(f"{self.path}: the lexicon has a gap at term id {expected}")
            lex.terms.append(term)
            lex.ids[term] = i
            lex.df.append(df)
        return lex

    def _unpack_block(self, block: int, terms_blob: bytes, df_blob: bytes,
                      tail_blob: bytes | None = None) -> tuple[list[str], np.ndarray]:
        import zstandard

        try:
            if self.batch_times:  # format 3: front-coded terms, one-byte frequencies
                terms = front_decode(zstandard.decompress(terms_blob))
                if tail_blob:
                    terms += front_decode(zstandard.decompress(tail_blob))
                df = unpack_df(zstandard.decompress(df_blob))
            else:
                terms = zstandard.decompress(terms_blob).decode("utf-8").split("\n")
                df = np.frombuffer(zstandard.decompress(df_blob), dtype="<u4")
        except (zstandard.ZstdError, UnicodeDecodeError, ValueError) as e:
            raise StoreCorruptError(f"{self.path}: lexicon block {block} is unreadable ({e})") from e
        if len(terms) != len(df) or len(terms) > self._lexicon_block():
            raise StoreCorruptError(f"{self.path}: lexicon block {block} holds {len(terms)} terms "
                                    f"and {len(df)} frequencies")
        return terms, df

    def _grow_block(self, conn: sqlite3.Connection, block: int, terms: list[str],
                    known: int) -> tuple[bytes, bytes | None]:
        """(terms, tail) blobs of a format 3 lexicon block whose first ``known`` terms were stored before.

        A full block is front-coded and compressed hard (zstd 19), once. A growing block keeps
        its older terms in ``terms`` (zstd 9) and its newest (at most ``LEXICON_TAIL``) in
        ``tail`` (zstd 3): an add codes and compresses only the tail, and the whole block again
        once the tail outgrows ``LEXICON_TAIL``.
        """
        import zstandard

        row = conn.execute("SELECT terms, tail FROM lexicon WHERE block = ?", (block,)).fetchone() \
            if known > 0 else None
        if row is not None and known >= len(terms):  # no new terms here: only the frequencies change
            return row[0], row[1]
        if len(terms) == self._lexicon_block():
            return zstandard.compress(self._front_coded(block, 0, terms, 0), 19), None
        if row is not None:
            in_tail = int.from_bytes(zstandard.decompress(row[1])[:4], "little") if row[1] else 0
            sealed = known - in_tail
            if len(terms) - sealed <= LEXICON_TAIL:
                tail = self._front_coded(block, sealed, terms[sealed:], in_tail)
                return row[0], zstandard.compress(tail, 3)
        return zstandard.compress(self._front_coded(block, 0, terms, max(known, 0)), 9), None

    def _front_coded(self, block: int, start: int, terms: list[str], known: int) -> bytes:
        """``front_encode(terms)`` (terms from id ``block * size + start`` on), of which the first
        ``known`` were coded before: the last part this handle coded is kept, so only new terms are."""
        cached = self._front_cache
        if cached is not None and cached[0] == (block, start) and 0 < known == len(cached[1]) \
                and cached[1] == terms[:known]:
            more = front_parts(terms[known:], cached[1][-1].encode("utf-8"))
            shared, rest = cached[2] + more[0], cached[3] + more[1]
        else:
            shared, rest = front_parts(terms)
        self._front_cache = ((block, start), terms, shared, rest)
        return front_pack(shared, rest)

    def _lexicon_block(self) -> int:
        """Term ids per lexicon block: format 3 keeps fewer, larger blocks (zstd sees more context)."""
        return LEXICON_BLOCK if self.batch_times else LEXICON_BLOCK_2

    def terms(self, ids: Sequence[int]) -> dict[int, str]:
        """id → term for the given lexicon ids (without loading the whole lexicon)."""
        out: dict[int, str] = {}
        if self.lexicon_blocks:
            size = self._lexicon_block()
            wanted = sorted(set(ids))
            blocks = sorted({i // size for i in wanted})
            count = self.get_meta("lexicon_terms")  # terms only grow: the same count, the same last block
            partial = self._partial_block if self._partial_block[0] == count and count is not None else None
            missing = [b for b in blocks if b not in self._term_blocks and not (partial and partial[1] == b)]
            for chunk in _chunks(missing, 900):
                q = ",".join("?" * len(chunk))
                tail = "tail" if self.batch_times else "NULL"
                for b, terms_blob, df_blob, tail_blob in self.conn.execute(
                    f"SELECT block, terms, df, {tail} FROM lexicon WHERE block IN ({q})", chunk
                ):
                    terms, _ = self._unpack_block(b, terms_blob, df_blob, tail_blob)
                    if len(terms) == size:  # a full block never changes again
                        self._term_blocks[b] = terms
                    else:
                        self._partial_block = (count, b, terms)
                        out.update((b * size + j, t) for j, t in enumerate(terms))
            if partial is not None:
                out.update((i, partial[2][i % size]) for i in wanted
                           if i // size == partial[1] and i % size < len(partial[2]))
            for i in wanted:
                full = self._term_blocks.get(i // size)
                if full is not None:
                    out[i] = full[i % size]
            return {i: out[i] for i in wanted if i in out}
        for chunk in _chunks(sorted(set(ids)), 900):
            q = ",".join("?" * len(chunk))
            out.update(self.conn.execute(f"SELECT id, term FROM terms WHERE id IN ({q})", chunk).fetchall())
        return out

    def save_lexicon(self, conn: sqlite3.Connection, lex: Lexicon, new_ids: Sequence[int], touched: set[int]) -> None:
        """Persist new terms and changed document frequencies inside the caller's transaction."""
        new = set(new_ids)
        if self.lexicon_blocks:
            import zstandard

            # blocks are rewritten whole: refuse to write over terms another writer added since we loaded
            stored = conn.execute("SELECT value FROM meta WHERE key = 'lexicon_terms'").fetchone()
            if stored is not None and int(stored[0]) != len(lex.terms) - len(new):
                raise StoreError(f"{self.path}: another process added to the lexicon since this one read it; "
                                 "add again (the lexicon is reloaded)")
            size = self._lexicon_block()
            for b in sorted({i // size for i in new | touched}):
                lo, hi = b * size, min((b + 1) * size, len(lex.terms))
                if self.batch_times:  # format 3: most frequencies take one byte
                    df = zstandard.compress(pack_df(lex.df[lo:hi]), 3)
                else:
                    df = zstandard.compress(np.asarray(lex.df[lo:hi], dtype="<u4").tobytes(), 3)
                if self.batch_times:
                    terms, tail = self._grow_block(conn, b, lex.terms[lo:hi], len(lex.terms) - len(new) - lo)
                    # delete first: its pages are free for the new row (a replace fills the new row's
                    # pages before it frees the old ones, and leaves a block's worth of free pages)
                    conn.execute("DELETE FROM lexicon WHERE block = ?", (b,))
                    conn.execute("INSERT INTO lexicon(block, terms, df, tail) VALUES (?, ?, ?, ?)", (b, terms, df, tail))
                elif any(lo <= i < hi for i in new):  # a full block is compressed hard, once
                    terms = zstandard.compress("\n".join(lex.terms[lo:hi]).encode("utf-8"), 19 if hi - lo == size else 3)
                    conn.execute("DELETE FROM lexicon WHERE block = ?", (b,))
                    conn.execute("INSERT INTO lexicon(block, terms, df) VALUES (?, ?, ?)", (b, terms, df))
                else:
                    conn.execute("UPDATE lexicon SET df = ? WHERE block = ?", (df, b))
            self.set_meta(conn, "lexicon_docs", str(lex.n_docs))
            self.set_meta(conn, "lexicon_terms", str(len(lex.terms)))
            return
        conn.executemany(
            "INSERT INTO terms(id, term, df) VALUES (?, ?, ?)", ((i, lex.terms[i], lex.df[i]) for i in new_ids)
        )
        conn.executemany(
            "UPDATE terms SET df = ? WHERE id = ?", ((lex.df[i], i) for i in touched if i not in new)
        )
        self.set_meta(conn, "lexicon_docs", str(lex.n_docs))

    # -- statistics --------------------------------------------------------------------

    def count(self, namespace: str | None = None) -> int:
        if self.batch_times and not self._has_index():  # format 3, one namespace: the kept count
            total = int(self.get_meta("record_count") or 0)
            if namespace is None:
                return total
            return total if self._ns_key(namespace) is not None else 0
        if namespace is None:
            return self.conn.execute("SELECT count(*) FROM records").fetchone()[0]
        return self.conn.execute("SELECT count(*) FROM records WHERE namespace = ?",
                                 (self._ns_key(namespace),)).fetchone()[0]

    def namespaces(self) -> dict[str, int]:
        if self.batch_times and not self._has_index():  # format 3 with at most one namespace
            n = self.count()
            return {self._ns_name(1): n} if n else {}
        counts = self.conn.execute("SELECT namespace, count(*) FROM records GROUP BY namespace").fetchall()
        return dict(sorted((self._ns_name(k), n) for k, n in counts))

    def byte_sums(self) -> dict[str, int]:
        """Total stored bytes of each record part."""
        r = self.conn.execute(
            "SELECT count(*), coalesce(sum(length(code)),0), coalesce(sum(length(qvec)),0), "
            "coalesce(sum(length(hints)),0), coalesce(sum(length(CAST(metadata AS BLOB))),0) FROM records"
        ).fetchone()
        sets = self.conn.execute(  # interned metadata counts once
            "SELECT coalesce(sum(length(CAST(json AS BLOB))),0) FROM meta_sets").fetchone()[0] if self._has("meta_sets") else 0
        texts = self.conn.execute("SELECT coalesce(sum(length(body)),0) FROM texts").fetchone()[0] \
            if self._has("texts") else 0
        # the text tier's zstd dictionaries (meta rows text_dict.<generation>) count as text bytes
        texts += self.conn.execute(
            "SELECT coalesce(sum(length(value)),0) FROM meta WHERE key LIKE 'text\\_dict.%' ESCAPE '\\'"
        ).fetchone()[0]
        if self.lexicon_blocks:
            terms = self.conn.execute("SELECT coalesce(sum(length(terms) + length(df)),0) FROM lexicon").fetchone()[0]
        else:
            terms = self.conn.execute(
                "SELECT coalesce(sum(length(CAST(term AS BLOB))) + 9 * count(*),0) FROM terms").fetchone()[0]
        return {"records": r[0], "code": r[1], "qvec": r[2], "hints": r[3], "metadata": r[4] + sets, "text": texts, "lexicon": terms}

    def file_bytes(self) -> int:
        """Size of the database file plus its WAL, as on disk now."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def file_parts(self) -> dict[str, int]:
        """Bytes of the file and its WAL by part; they add up to ``file_bytes()``.

        Pages are attributed to b-trees through SQLite's ``dbstat`` table: the
        records' pages split into their ``code``, ``qvec``, ``hints`` and
        ``metadata`` bytes (their own; interned sets are ``metadata_sets``) and ``records_other`` (id, namespace,
        row headers, free space in pages; format 1 and 2 also time and generation); ``batch_times``
        (format 3: the ``batches`` table); ``namespace_index``; ``lexicon``; ``settings`` (the meta
        table: config, hasher, quantizer, text-tier dictionaries, format 3 namespace ids); ``text``;
        ``ivf_lists``; ``sqlite`` (schema; formats 1 and 2 also the id sequence);
        ``free_pages``; ``wal`` (whatever the file and WAL hold beyond the
        database's pages). Without ``dbstat`` everything is ``unattributed``.
        """
        total = self.file_bytes()
        try:
            btrees = self.conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:
            return {"unattributed": total}
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        names = {"records_namespace": "namespace_index", "namespaces": "namespace_index", "terms": "lexicon", "sqlite_autoindex_terms_1": "lexicon",
                 "lexicon": "lexicon", "meta_sets": "metadata_sets", "meta": "settings", "sqlite_autoindex_meta_1": "settings", "texts": "text",
                 "sqlite_schema": "sqlite", "sqlite_master": "sqlite", "sqlite_sequence": "sqlite",
                 "batches": "batch_times"}
        parts: dict[str, int] = {}
        for name, size in btrees:
            if name == "records":
                content = dict(zip(("code", "qvec", "hints", "metadata"), self.conn.execute(
                    "SELECT coalesce(sum(length(code)),0), coalesce(sum(length(qvec)),0), coalesce(sum(length(hints)),0), "
                    "coalesce(sum(length(CAST(metadata AS BLOB))),0) FROM records").fetchone(), strict=True))
                parts.update(content)
                parts["records_other"] = size - sum(content.values())
            else:
                part = names.get(name, name)
                parts[part] = parts.get(part, 0) + size
        parts["free_pages"] = free * page_size
        parts["wal"] = total - pages * page_size
        return parts

    def checkpoint(self) -> None:
        if not self.readonly:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- text tier (memory.texttier) ---------------------------------------------------

    def iter_texts(self, *, batch: int = 4096, after: int = -1) -> Iterator[tuple[list[int], list[bytes]]]:
        """(ids, bodies) of the ``texts`` table with id > after in id order, in batches (safe to update
        while iterating)."""
        last = after
        while self._has("texts"):
            rows = self.conn.execute(
                "SELECT id, body FROM texts WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[0] for r in rows], [r[1] for r in rows]

    def update_texts(self, conn: sqlite3.Connection, ids: Sequence[int], bodies: Sequence[bytes]) -> None:
        """Overwrite text bodies inside the caller's transaction."""
        conn.executemany("UPDATE texts SET body = ? WHERE id = ?", zip(bodies, ids, strict=True))

    def delete_meta(self, conn: sqlite3.Connection, key: str) -> None:
        """Remove one meta value inside the caller's transaction."""
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- API keys (memory.keys; the servers' tenants) ------------------------------------
    # api_keys(name TEXT PRIMARY KEY, digest TEXT UNIQUE (SHA-256 hex of the token),
    # grants TEXT (JSON {namespace: "read"|"write"}), created REAL, revoked REAL NULL);
    # created on the first key, so stores without keys are unchanged.

    def put_key(self, name: str, digest: str, grants: dict[str, str]) -> None:
        """Store a new key (its token's digest and grants) in one transaction.

        Raises:
            ConfigError: a key with this name exists.
        """
        with self.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS api_keys (name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, "
                      "grants TEXT NOT NULL, created REAL NOT NULL, revoked REAL)")
            if c.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone():
                raise ConfigError(f"a key named {name!r} exists; revoke it or choose another name")
            c.execute("INSERT INTO api_keys (name, digest, grants, created) VALUES (?, ?, ?, ?)",
                      (name, digest, json.dumps(grants, sort_keys=True), time.time()))

    def keys(self, *, digest: str | None = None) -> list[tuple[str, str, dict, float, float | None]]:
        """(name, digest, grants, created, revoked) of every key, or of the key with this digest."""
        if not self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='api_keys'").fetchone():
            return []
        sql = "SELECT name, digest, grants, created, revoked FROM api_keys"
        rows = self.conn.execute(sql + (" WHERE digest = ?" if digest else " ORDER BY created, name"),
                                 (digest,) if digest else ()).fetchall()
        return [(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def revoke_key(self, name: str) -> bool:
        """Mark a key revoked; False when no valid key has this name."""
        if not self.keys():
            return False
        with self.transaction() as c:
            cur = c.execute("UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL", (time.time(), name))
        return cur.rowcount > 0


def _chunks(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]

