"""Tables beside ``records``, keyed by record id: exact texts, term index entries and IVF lists.

- ``texts(id INTEGER PRIMARY KEY, body BLOB NOT NULL)``: a passage's body for the ``text``
  fidelity tier (its bytes are the tier's: ``tiers.text``). Created with the first body.
- ``term_index(id INTEGER PRIMARY KEY, length INTEGER NOT NULL, ids BLOB NOT NULL, counts BLOB NOT NULL,
  numbers BLOB)``: a passage's ``termindex.TermStats`` (a ``text`` or ``llm`` store). Created
  with the store, so a store has the table exactly when every record has its row: a store
  made before it never gets one (its searches decode bodies instead, ``fusion``).
- ``ivf_lists(id INTEGER PRIMARY KEY, list INTEGER NOT NULL)``: the IVF list of a record of a
  partitioned namespace (``partition``). Created with the first partition (format 1 stores:
  on opening).

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
TERMS = ("CREATE TABLE term_index (id INTEGER PRIMARY KEY, length INTEGER NOT NULL, ids BLOB NOT NULL, "
         "counts BLOB NOT NULL, numbers BLOB)")
KEYED_BY_RECORD = ("texts", "term_index", "ivf_lists")


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


class TermTable:
    """Table ``term_index``: the term index entries of a ``text`` or ``llm`` store (``termindex``)."""

    def __init__(self, file: StoreFile) -> None:
        self.file = file

    @property
    def exists(self) -> bool:
        return self.file.has("term_index")

    def insert(self, conn: sqlite3.Connection, ids: Sequence[int], entries: Sequence[tuple]) -> None:
        """Add the entries (length, ids, counts, numbers) of new records inside the caller's transaction."""
        conn.executemany("INSERT INTO term_index(id, length, ids, counts, numbers) VALUES (?, ?, ?, ?, ?)",
                         ((int(i), *e) for i, e in zip(ids, entries, strict=True)))

    def fetch(self, ids: Sequence[int]) -> dict[int, tuple]:
        """id → (length, ids, counts, numbers) of those ids that have an entry."""
        out = {}
        for chunk in chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            out.update((r[0], r[1:]) for r in self.file.conn.execute(
                f"SELECT id, length, ids, counts, numbers FROM term_index WHERE id IN ({q})", chunk))
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
