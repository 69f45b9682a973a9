"""The SQLite connection a store file is opened with: a damaged file gives StoreCorruptError, wherever it shows.

SQLite finds most damage only when a query reads the damaged page (``PRAGMA quick_check``
at open does not read every page's content), so "database disk image is malformed" can come
from any statement, or from a later row of one. This connection (and its cursors) turn every
such error, and text that is no longer valid UTF-8, into ``StoreCorruptError`` naming the file;
every other SQLite error (busy, read-only, disk full, a missing table) is left as it is, for
``storage`` to handle.

What it does not do: check anything itself (``Storage.check``) or repair a file.
"""

from __future__ import annotations

import sqlite3

from ...errors import StoreCorruptError

_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_ERRORS = (sqlite3.DatabaseError, UnicodeDecodeError)


def raise_if_damaged(path, e: Exception) -> None:
    """Raise the StoreCorruptError a SQLite (or text decoding) error means; return when it means something else."""
    code = getattr(e, "sqlite_errorcode", None)
    damaged = (code is not None and code & 0xFF in _DAMAGED) or isinstance(e, UnicodeDecodeError) or (
        isinstance(e, sqlite3.OperationalError) and str(e).startswith("Could not decode to UTF-8"))
    if damaged:
        raise StoreCorruptError(f"{path} is not a hashmem store or is corrupted ({str(e)[:200]}); "
                                "restore it from a backup") from e


def _guarded(base, path_of):
    """``base`` (a sqlite3 method) with a damaged file reported as StoreCorruptError."""

    def method(self, *args):
        try:
            return base(self, *args)
        except _ERRORS as e:
            raise_if_damaged(path_of(self), e)
            raise

    method.__name__ = base.__name__
    return method


def _cursor_path(cursor) -> str:
    return cursor.connection.path


class Cursor(sqlite3.Cursor):
    """A cursor whose statements and rows report a damaged file as StoreCorruptError."""

    execute = _guarded(sqlite3.Cursor.execute, _cursor_path)
    executemany = _guarded(sqlite3.Cursor.executemany, _cursor_path)
    fetchone = _guarded(sqlite3.Cursor.fetchone, _cursor_path)
    fetchmany = _guarded(sqlite3.Cursor.fetchmany, _cursor_path)
    fetchall = _guarded(sqlite3.Cursor.fetchall, _cursor_path)
    __next__ = _guarded(sqlite3.Cursor.__next__, _cursor_path)


class Connection(sqlite3.Connection):
    """``sqlite3.connect(..., factory=Connection)``; set ``path`` (named in errors) after connecting."""

    path = "the store file"

    def cursor(self, factory=None):
        return super().cursor(factory or Cursor)

    def execute(self, sql, parameters=()):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        return self.cursor().executemany(sql, seq_of_parameters)

    executescript = _guarded(sqlite3.Connection.executescript, lambda conn: conn.path)
