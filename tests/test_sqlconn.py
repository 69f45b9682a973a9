"""The store's SQLite connection: damage is StoreCorruptError wherever it shows; other errors stay SQLite's."""

import sqlite3

import pytest

from hashmem.memory.backends.local.sqlconn import Connection
from hashmem.memory.errors import StoreCorruptError


def _table(path, rows: int = 3000):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", ((i, f"row {i} " * 20) for i in range(rows)))
    conn.commit()
    conn.close()


def test_other_errors_stay_sqlite_errors(tmp_path):
    conn = sqlite3.connect(tmp_path / "a.db", factory=Connection)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        conn.execute("SELECT * FROM missing")
    with pytest.raises(sqlite3.IntegrityError):
        conn.executescript("CREATE TABLE u (x UNIQUE); INSERT INTO u VALUES (1); INSERT INTO u VALUES (1);")


def test_a_damaged_page_is_a_store_corrupt_error_in_a_later_row(tmp_path):
    path = tmp_path / "a.db"
    _table(path)
    data = bytearray(path.read_bytes())
    page = len(data) // 4096 // 2 * 4096  # the header of a leaf page in the middle of the table
    data[page : page + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    conn = sqlite3.connect(path, factory=Connection)
    conn.path = str(path)
    with pytest.raises(StoreCorruptError, match=r"a\.db is not a hashmem store or is corrupted \(.*malformed"):
        for _ in conn.execute("SELECT id, body FROM t"):
            pass
    with pytest.raises(StoreCorruptError):
        conn.execute("SELECT count(*), sum(length(body)) FROM t").fetchall()


def test_text_that_is_not_utf8_is_a_store_corrupt_error(tmp_path):
    conn = sqlite3.connect(tmp_path / "a.db", factory=Connection)
    conn.execute("CREATE TABLE t (body TEXT)")
    conn.execute("INSERT INTO t VALUES (CAST(x'ff00' AS TEXT))")
    with pytest.raises(StoreCorruptError, match="Could not decode to UTF-8"):
        conn.execute("SELECT body FROM t").fetchone()
