"""One store file's SQLite connection: opening it, write transactions, the ``meta`` table, integrity.

Opening checks the path (a regular file that exists, or may be created), connects through
``sqlconn.Connection`` and looks at the tables before anything in the file changes: a foreign
SQLite file is refused, never switched to WAL. A new file gets the page size it is given
(``storage.PAGE_SIZE``) before its first table; a writable one is switched to WAL (waiting for
another process that is creating it) with ``synchronous`` NORMAL, or FULL when ``durable``. A
read-only open uses ``mode=ro``, or ``immutable=1`` on a read-only filesystem or directory.

``meta(key TEXT PRIMARY KEY, value BLOB NOT NULL)`` (format 3: ``WITHOUT ROWID``; format 1
and 2: with a rowid) holds one value per key: text, an int as decimal text, or bytes. The
keys each part keeps are listed where they are written (``storage``, ``formats``,
``lexicon``, ``interning``, the tiers).

Every write happens in one ``BEGIN IMMEDIATE … COMMIT`` transaction (``transaction``), so a
killed process loses at most the batch it was writing. Writers from several processes wait
for each other's write lock up to ``busy_timeout`` seconds. ``PRAGMA data_version`` tells an
open handle that another process committed. SQLite failures inside a write (disk full, I/O
errors) and a store file deleted or replaced under the open handle (its device and inode are
checked before every write and its commit) become a ``StoreError`` naming the cause, after
the rollback.

What it does not do: know records, lexicon or any format's tables (``formats``, ``records``,
``lexicon``), or turn damaged pages into ``StoreCorruptError`` (``sqlconn``).
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import StoreCorruptError, StoreError
from . import sqlconn

BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's write lock
INT64_MAX = 2**63 - 1  # the largest id a record can have


def chunks(seq: list, n: int) -> Iterator[list]:
    """``seq`` in slices of at most ``n`` (SQLite binds at most 999 parameters per statement)."""
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class StoreFile:
    """The open SQLite connection of one store file (see the module docstring).

    Args:
        path: the file.
        create: allow a missing (or empty) file.
        readonly: open for reading only (also when the file is not writable).
        busy_timeout: seconds a write waits for another process's write lock.
        durable: ``synchronous=FULL`` instead of ``NORMAL``.
        page_size: bytes per page of a new file.

    Attributes:
        tables: names of the tables (and, once seen, indexes) known to exist; those found at
            opening decide the format (``formats.open_format``). Tables are never dropped.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool, readonly: bool, busy_timeout: float,
                 durable: bool, page_size: int) -> None:
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
        self.closed = False
        self._inode = None
        try:
            self.conn = sqlite3.connect(self.uri(), uri=True, isolation_level=None, check_same_thread=False,
                                        timeout=busy_timeout, factory=sqlconn.Connection)
            self.conn.path = str(self.path)  # named when a damaged page shows (sqlconn)
            # look before changing anything: a foreign SQLite file must not be switched to WAL
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and not ({"meta", "records"} <= tables and tables & {"terms", "lexicon"}):
                self.close_quietly()
                raise StoreCorruptError(f"{self.path} is an SQLite file but not a hashmem store")
            if not tables and not self.readonly:  # before the first table: an existing store keeps its page size
                self.conn.execute(f"PRAGMA page_size={page_size}")
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
            raise StoreError(f"{self.path}: {e}") from e
        self.tables = tables
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

    def uri(self) -> str:
        """The ``file:`` URI the connection was opened with (read-only: ``mode=ro`` or ``immutable=1``)."""
        quoted = urllib.parse.quote(str(self.path.absolute()))
        if not self.readonly:
            return f"file:{quoted}"
        if os.access(self.path.parent, os.W_OK) and os.access(self.path, os.W_OK):
            return f"file:{quoted}?mode=ro"  # a reader among writers: sees their commits
        return f"file:{quoted}?immutable=1"  # read-only filesystem: nobody writes, no -wal/-shm needed

    def _remember_inode(self) -> None:
        """Note the file's device and inode: a write checks that they are still the same."""
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

    def has(self, table: str) -> bool:
        """Whether a table created on first need (format 3: texts, ivf_lists, meta_sets) exists now.

        A yes is remembered (tables are never dropped) — unless seen inside a write
        transaction, which may still roll back.
        """
        return table in self.tables or self._exists("table", table)

    def has_index(self, name: str) -> bool:
        """Whether an index exists now (remembered like ``has``)."""
        return self._exists("index", name)

    def _exists(self, kind: str, name: str) -> bool:
        if name in self.tables:
            return True
        found = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (kind, name)).fetchone()
        if found and not self.conn.in_transaction:
            self.tables.add(name)
        return found is not None

    def close_quietly(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - best effort while reporting another error
            pass

    def close(self) -> None:
        self.conn.close()
        self.closed = True

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception (nested: joins the open one).

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

    def checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it (nothing when read-only)."""
        if not self.readonly:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def reclaim(self, *, full: bool = False) -> None:
        """Give free pages back to the filesystem: the file shrinks by them.

        A file made with ``auto_vacuum`` NONE (every store before the first compaction: new
        stores are created as before, so a store that never compacts keeps its bytes) is
        switched to INCREMENTAL by one ``VACUUM``, which rewrites it whole (once; it needs free
        disk space about the file's size). After that, ``PRAGMA incremental_vacuum`` moves the
        last pages into the free ones and truncates, in one write transaction. ``full``:
        ``VACUUM`` anyway, which also packs half-empty pages. Then the WAL is checkpointed and
        truncated, so the file is its pages. A kill at any point leaves the file as it was
        before that step or after it (SQLite's own atomic commit).

        Raises:
            StoreError: read-only, busy too long, or SQLite failed.
        """
        if self.readonly:
            raise StoreError(f"cannot write {self.path}: opened read-only (or the file is read-only)")
        try:
            if full or self.conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                self._check_file()
                self.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self.conn.execute("VACUUM")
            else:
                with self.transaction() as c:
                    for _ in range(c.execute("PRAGMA freelist_count").fetchone()[0]):
                        c.execute("PRAGMA incremental_vacuum(1)")  # one page per step; Python steps once
            self.checkpoint()
        except sqlite3.OperationalError as e:
            raise StoreError(f"cannot reclaim the free space of {self.path}: {e}") from e

    def page_bytes(self) -> int:
        """The database's size in pages × page size: the file once the WAL is checkpointed."""
        return (self.conn.execute("PRAGMA page_count").fetchone()[0]
                * self.conn.execute("PRAGMA page_size").fetchone()[0])

    def check_integrity(self, *, full: bool = False) -> None:
        """SQLite's ``quick_check`` (``integrity_check`` when ``full``).

        Raises:
            StoreCorruptError: the check's first findings.
        """
        pragma = "integrity_check" if full else "quick_check"
        result = [r[0] for r in self.conn.execute(f"PRAGMA {pragma}")]
        if result != ["ok"]:
            raise StoreCorruptError(f"{self.path} fails SQLite's {pragma}: {'; '.join(result[:3])}")

    # -- the meta table ------------------------------------------------------------------

    def get_meta(self, key: str) -> bytes | str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, conn: sqlite3.Connection, key: str, value: bytes | str) -> None:
        """Write one meta value inside the caller's transaction."""
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def delete_meta(self, conn: sqlite3.Connection, key: str) -> None:
        """Remove one meta value inside the caller's transaction."""
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))
