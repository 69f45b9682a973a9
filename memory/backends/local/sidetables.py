"""Tables beside ``records``, keyed by record id: exact texts, IVF lists, the rewrite log.

- ``texts(id INTEGER PRIMARY KEY, body BLOB NOT NULL)``: a passage's body for the ``text``
  fidelity tier (its bytes are the tier's: ``tiers.text``). Created with the first body.
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
from collections.abc import Iterator, Sequence

import numpy as np

from .interning import InlineNames
from .sqlfile import StoreFile, chunks

TEXTS = "CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"
IVF_LISTS = "CREATE TABLE IF NOT EXISTS ivf_lists (id INTEGER PRIMARY KEY, list INTEGER NOT NULL)"
REWRITES = "CREATE TABLE IF NOT EXISTS rewrites (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)"
KEYED_BY_RECORD = ("texts", "ivf_lists", "rewrites")


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

    def put(self, conn: sqlite3.Connection, ids: Sequence[int], bodies: Sequence[bytes]) -> None:
        """Set the bodies of records (new or kept) inside the caller's transaction."""
        conn.execute(TEXTS)
        conn.executemany("INSERT OR REPLACE INTO texts(id, body) VALUES (?, ?)", zip(ids, bodies, strict=True))


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
