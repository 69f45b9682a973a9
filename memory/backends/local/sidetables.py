"""Tables beside ``records``, keyed by record id: exact texts, their last access, term index entries,
IVF lists, the rewrite log.

- ``texts(id INTEGER PRIMARY KEY, body BLOB NOT NULL)``: a passage's body for the ``text``
  fidelity tier (its bytes are the tier's: ``tiers.text``). Created with the first body; a
  record demoted by a byte budget (``memory.compact``) has no row here.
- ``body_access(id INTEGER PRIMARY KEY, at REAL NOT NULL)``: the Unix time a body was last
  read by ``Memory.get`` (which recall and ask go through), written in batches. Created by the
  first compaction or byte budget: a store that never compacts never writes it.
- ``term_index(id INTEGER PRIMARY KEY, entry BLOB NOT NULL)``: a passage's term index entry
  (``termindex``, format 2: one ``termcode`` blob) of a ``text`` or ``llm`` store; a store made
  before has format 1's columns ``(id, length, ids, counts, numbers)`` (a ``termindex.TermStats``)
  and keeps writing them (``TermTable.format``). Created
  with the store, so a store has the table exactly when every record has its row: a store
  made before it never gets one (its searches decode bodies instead, ``fusion``). A record
  demoted by a byte budget loses its row with its body (its searches then use its hint terms).
- ``ivf_lists(id INTEGER PRIMARY KEY, list INTEGER NOT NULL)``: the IVF list of a record of a
  partitioned namespace (``partition``). Created with the first partition (format 1 stores:
  on opening).
- ``rewrites(id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)``: the records rewritten in place
  (``dedup="replace"``), each with the number of the rewrite transaction that last changed it
  (meta ``rewrites``: how many there were), so other processes' open handles re-read just
  those codes. Created with the first rewrite: a store never rewritten has neither.

A record's rows here go with it (``records.RecordFormat.delete`` deletes from every table of
``KEYED_BY_RECORD`` that exists). Format 1 and 2 stores have both tables from the start.

What it does not do: code bodies (``tiers``), fit or assign lists (``partition``, ``ivf``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ...errors import StoreError
from . import sqlconn
from .interning import InlineNames
from .sqlfile import StoreFile, chunks

TEXTS = "CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"
IVF_LISTS = "CREATE TABLE IF NOT EXISTS ivf_lists (id INTEGER PRIMARY KEY, list INTEGER NOT NULL)"
ACCESS = "CREATE TABLE IF NOT EXISTS body_access (id INTEGER PRIMARY KEY, at REAL NOT NULL)"
REWRITES = "CREATE TABLE IF NOT EXISTS rewrites (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)"
TERMS = "CREATE TABLE term_index (id INTEGER PRIMARY KEY, entry BLOB NOT NULL)"
TERMS_V1 = ("CREATE TABLE term_index (id INTEGER PRIMARY KEY, length INTEGER NOT NULL, ids BLOB NOT NULL, "
            "counts BLOB NOT NULL, numbers BLOB)")  # stores made before format 2 of the entries
KEYED_BY_RECORD = ("texts", "term_index", "ivf_lists", "body_access", "rewrites")
ACCESS_WAIT = 0.2  # seconds a batch of access times waits for another writer before it is kept for later


class TextTable:
    """Table ``texts``: the bodies of the ``text`` fidelity tier."""

    def __init__(self, file: StoreFile) -> None:
        self.file = file

    def insert(self, conn: sqlite3.Connection, ids: Sequence[int], bodies: Sequence[bytes]) -> None:
        """Add the bodies of new records inside the caller's transaction."""
        conn.execute(TEXTS)
        conn.executemany("INSERT INTO texts(id, body) VALUES (?, ?)", zip(ids, bodies, strict=True))

    def fetch(self, ids: Sequence[int]) -> dict[int, bytes]:
        """id → body of those ids that have one."""
        out = {}
        if not self.file.has("texts"):
            return out
        for chunk in chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            out.update(self.file.conn.execute(f"SELECT id, body FROM texts WHERE id IN ({q})", chunk).fetchall())
        return out

    def iter(self, *, batch: int = 4096, after: int = -1) -> Iterator[tuple[list[int], list[bytes]]]:
        """(ids, bodies) with id > after in id order, in batches (safe to update while iterating)."""
        last = after
        while self.file.has("texts"):
            rows = self.file.conn.execute(
                "SELECT id, body FROM texts WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[0] for r in rows], [r[1] for r in rows]

    def update(self, conn: sqlite3.Connection, ids: Sequence[int], bodies: Sequence[bytes]) -> None:
        """Overwrite bodies inside the caller's transaction."""
        conn.executemany("UPDATE texts SET body = ? WHERE id = ?", zip(bodies, ids, strict=True))

    def delete(self, conn: sqlite3.Connection, ids: Sequence[int]) -> int:
        """Drop the bodies of these ids inside the caller's transaction (the records stay); how many existed."""
        if not self.file.has("texts"):
            return 0
        gone = 0
        for chunk in chunks([int(i) for i in ids], 900):
            gone += conn.execute(f"DELETE FROM texts WHERE id IN ({','.join('?' * len(chunk))})", chunk).rowcount
        return gone

    def put(self, conn: sqlite3.Connection, ids: Sequence[int], bodies: Sequence[bytes]) -> None:
        """Set the bodies of records (new or kept) inside the caller's transaction."""
        conn.execute(TEXTS)
        conn.executemany("INSERT OR REPLACE INTO texts(id, body) VALUES (?, ?)", zip(ids, bodies, strict=True))

    def counts(self) -> dict[str, int]:
        """Bodies by tier: ``llm`` (tag 255, ``tiers.llm``) and ``text`` (the others)."""
        if not self.file.has("texts"):
            return {"llm": 0, "text": 0}
        n, llm = self.file.conn.execute(
            "SELECT count(*), coalesce(sum(substr(body, 1, 1) = x'ff'), 0) FROM texts").fetchone()
        return {"llm": int(llm), "text": int(n - llm)}

    def ages(self, namespace_key, created_sql: str, accessed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, body bytes, last use) of the records with a body (of one namespace key, or all), in id order.

        Args:
            namespace_key: what ``records.namespace`` holds for the namespace, or None for all.
            created_sql: the format's creation time of ``records r``.
            accessed: the ``body_access`` table exists (its times count as the last use).
        """
        if not self.file.has("texts"):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        used = f"max({created_sql}, coalesce(a.at, 0))" if accessed else created_sql
        join = "LEFT JOIN body_access a ON a.id = t.id " if accessed else ""
        where, args = ("WHERE r.namespace = ? ", (namespace_key,)) if namespace_key is not None else ("", ())
        rows = self.file.conn.execute(f"SELECT t.id, length(t.body), {used} FROM texts t JOIN records r ON r.id = t.id "
                                      f"{join}{where}ORDER BY t.id", args).fetchall()
        arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
        return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]


class AccessTable:
    """Table ``body_access``: when each body was last read, written through a connection of its own.

    Access times are written in batches from reads (``Memory.get``), which must never wait long or
    join another thread's write: so they go through a second connection that waits at most
    ``ACCESS_WAIT`` seconds for the write lock, and a busy store keeps the batch for later.
    """

    def __init__(self, file: StoreFile) -> None:
        self.file = file
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one batch at a time on the connection

    def start(self, conn: sqlite3.Connection) -> None:
        """Create the table (start keeping access times) inside the caller's transaction."""
        conn.execute(ACCESS)

    def write(self, accessed: Mapping[int, float]) -> bool:
        """Record access times of records that still have a body; False when the store was busy."""
        if self.file.readonly or not accessed or not self.file.has("body_access"):
            return True
        with self._lock:
            return self._write(accessed)

    def _write(self, accessed: Mapping[int, float]) -> bool:
        if self._conn is None:
            self._conn = sqlite3.connect(self.file.uri(), uri=True, isolation_level=None, check_same_thread=False,
                                         timeout=ACCESS_WAIT, factory=sqlconn.Connection)
            self._conn.path = str(self.file.path)
            self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                return False
            raise StoreError(f"cannot write {self.file.path}: {e}") from e
        try:
            self._conn.executemany(
                "INSERT INTO body_access(id, at) SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM texts WHERE id = ?1) "
                "ON CONFLICT(id) DO UPDATE SET at = max(at, excluded.at)",
                ((int(i), float(t)) for i, t in accessed.items()))
            self._conn.execute("COMMIT")
        except sqlite3.Error as e:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StoreError(f"cannot write {self.file.path}: {e}") from e
        return True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RewriteLog:
    """Table ``rewrites`` and meta ``rewrites``: which records were rewritten in place, by which rewrite."""

    def __init__(self, file: StoreFile) -> None:
        self.file = file

    def count(self) -> int:
        """How many rewrite transactions there were (ever); 0 on a store never rewritten."""
        return int(self.file.get_meta("rewrites") or 0)

    def note(self, conn: sqlite3.Connection, ids: Sequence[int]) -> None:
        """Log a rewrite of these records inside the caller's transaction."""
        conn.execute(REWRITES)
        conn.execute("INSERT INTO meta(key, value) VALUES ('rewrites', 1) "
                     "ON CONFLICT(key) DO UPDATE SET value = value + 1")
        seq = int(conn.execute("SELECT value FROM meta WHERE key = 'rewrites'").fetchone()[0])
        conn.executemany("INSERT OR REPLACE INTO rewrites(id, seq) VALUES (?, ?)", ((int(i), seq) for i in ids))

    def since(self, seq: int) -> list[int]:
        """Ids rewritten by a rewrite numbered above ``seq``, ascending."""
        if not self.file.has("rewrites"):
            return []
        return [r[0] for r in self.file.conn.execute("SELECT id FROM rewrites WHERE seq > ? ORDER BY id", (seq,))]


class TermTable:
    """Table ``term_index``: the term index entries of a ``text`` or ``llm`` store (``termindex``)."""

    def __init__(self, file: StoreFile) -> None:
        self.file = file
        self._format: int | None = None

    @property
    def exists(self) -> bool:
        return self.file.has("term_index")

    @property
    def format(self) -> int:
        """2: rows ``(id, entry)``; 1: the four columns of a store made before (``termindex.encode``'s ``fmt``)."""
        if self._format is None:
            cols = [r[1] for r in self.file.conn.execute("PRAGMA table_info(term_index)")]
            if not cols:
                return 2
            self._format = 2 if cols == ["id", "entry"] else 1
        return self._format

    def insert(self, conn: sqlite3.Connection, ids: Sequence[int], entries: Sequence) -> None:
        """Set the entries (bytes, or format 1 tuples) of new or rewritten records inside the caller's transaction."""
        if self.format == 2:
            conn.executemany("INSERT OR REPLACE INTO term_index(id, entry) VALUES (?, ?)",
                             zip((int(i) for i in ids), entries, strict=True))
            return
        conn.executemany("INSERT OR REPLACE INTO term_index(id, length, ids, counts, numbers) VALUES (?, ?, ?, ?, ?)",
                         ((int(i), *e) for i, e in zip(ids, entries, strict=True)))

    def fetch(self, ids: Sequence[int]) -> dict:
        """id → entry (format 2: bytes; 1: a (length, ids, counts, numbers) tuple) of those ids that have one."""
        v2 = self.format == 2
        cols = "id, entry" if v2 else "id, length, ids, counts, numbers"
        out = {}
        for chunk in chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            cur = self.file.conn.execute(f"SELECT {cols} FROM term_index WHERE id IN ({q})", chunk)
            out.update(cur.fetchall() if v2 else ((r[0], r[1:]) for r in cur))
        return out


class IvfListTable:
    """Table ``ivf_lists``: the IVF list of each record of a partitioned namespace."""

    def __init__(self, file: StoreFile, names: InlineNames) -> None:
        self.file = file
        self.names = names

    def set(self, conn: sqlite3.Connection, ids: Sequence[int], lists: Sequence[int]) -> None:
        """Record (or replace) the IVF list of records inside the caller's transaction."""
        conn.execute(IVF_LISTS)
        conn.executemany("INSERT OR REPLACE INTO ivf_lists(id, list) VALUES (?, ?)",
                         zip((int(i) for i in ids), (int(x) for x in lists), strict=True))

    def of(self, namespace: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, lists int32) of a namespace's records that have a list (none before a partition)."""
        if not self.file.has("ivf_lists"):
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        cur = self.file.conn.execute(
            "SELECT l.id, l.list FROM ivf_lists l JOIN records r ON r.id = l.id WHERE r.namespace = ? ORDER BY l.id",
            (self.names.key(namespace),),
        )
        parts = []  # 64k rows at a time: never a million Python tuples at once
        while rows := cur.fetchmany(65536):
            parts.append(np.array(rows, dtype=np.int64))
        arr = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
        return arr[:, 0].copy(), arr[:, 1].astype(np.int32)
