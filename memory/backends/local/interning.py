"""Values stored once and referred to by a small integer: namespace names, and metadata shared by records.

Namespaces (what ``records.namespace`` holds for a name), by format:

- format 3 (``NamespaceMeta``): meta rows ``namespace:<name>`` → the id as decimal text, ids
  from 1 in order of creation; the index ``records_namespace`` on ``records(namespace)`` is
  created with the second namespace (with one, every query by namespace reads the whole
  table anyway).
- format 2 (``NamespaceTable``): ``namespaces(id INTEGER PRIMARY KEY, name TEXT)``.
- format 1 (``InlineNames``): the name itself, as TEXT.

Metadata (``MetaSets``, formats 2 and 3): ``meta_sets(id INTEGER PRIMARY KEY, json TEXT)``
(format 3: created with the first set) holds JSON objects (sorted keys) shared by several
records; a record's metadata is its ``meta_set``'s object (0: none) plus its own
``metadata``, with disjoint keys. A string value that two records of one batch share
(``source`` of a file's passages, ``--meta`` values) goes to the set; the rest stays per
record. Sets are never deleted (they are few and small). Format 1 has no sets (``NoMetaSets``).

What it does not do: write or read records (``records``), or pick the format (``formats``).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Sequence

from .sqlfile import StoreFile

NAMESPACE_INDEX = "CREATE INDEX IF NOT EXISTS records_namespace ON records(namespace)"
META_SETS = "CREATE TABLE IF NOT EXISTS meta_sets (id INTEGER PRIMARY KEY, json TEXT NOT NULL)"
_NS_PREFIX = "namespace:"  # format 3: meta key of a namespace's id
_NS_RANGE = "key >= 'namespace:' AND key < 'namespace;'"  # ';' follows ':'


class InlineNames:
    """Format 1: ``records.namespace`` holds the name."""

    def __init__(self, file: StoreFile) -> None:
        self.file = file

    def key(self, name: str, *, conn: sqlite3.Connection | None = None) -> int | str | None:
        """What ``records.namespace`` holds for a name (here: the name)."""
        return name

    def name(self, key: int | str) -> str:
        return key


class NamespaceTable(InlineNames):
    """Format 2: ids of table ``namespaces``."""

    def __init__(self, file: StoreFile) -> None:
        super().__init__(file)
        self._names: dict[int, str] = {}  # namespace id → name, of committed namespaces

    def key(self, name: str, *, conn: sqlite3.Connection | None = None) -> int | str | None:
        """The namespace's id (None if unknown); with ``conn`` (inside a write) an unknown one is created."""
        row = (conn or self.file.conn).execute("SELECT id FROM namespaces WHERE name = ?", (name,)).fetchone()
        if row is None and conn is not None:
            return conn.execute("INSERT INTO namespaces(name) VALUES (?)", (name,)).lastrowid
        return None if row is None else row[0]

    def name(self, key: int | str) -> str:
        if key not in self._names:
            self._names = self._read_names()
        return self._names[key]

    def _read_names(self) -> dict[int, str]:
        return dict(self.file.conn.execute("SELECT id, name FROM namespaces"))


class NamespaceMeta(NamespaceTable):
    """Format 3: ids in meta rows ``namespace:<name>``; the namespace index with the second one."""

    def key(self, name: str, *, conn: sqlite3.Connection | None = None) -> int | str | None:
        """The namespace's id (None if unknown); with ``conn`` (inside a write) an unknown one is created."""
        row = (conn or self.file.conn).execute("SELECT value FROM meta WHERE key = ?", (_NS_PREFIX + name,)).fetchone()
        if row is None and conn is not None:
            n = conn.execute(f"SELECT count(*) FROM meta WHERE {_NS_RANGE}").fetchone()[0]
            if n:
                conn.execute(NAMESPACE_INDEX)  # a second namespace; with one, no index is needed
            self.file.set_meta(conn, _NS_PREFIX + name, str(n + 1))
            return n + 1
        return None if row is None else int(row[0])

    def _read_names(self) -> dict[int, str]:
        return {int(v): k[len(_NS_PREFIX):] for k, v in
                self.file.conn.execute(f"SELECT key, value FROM meta WHERE {_NS_RANGE}")}


class NoMetaSets:
    """Format 1: every record keeps its whole metadata."""

    def __init__(self, file: StoreFile) -> None:
        self.file = file

    def present(self) -> bool:
        """Whether table ``meta_sets`` exists (to join it)."""
        return False

    def intern(self, conn: sqlite3.Connection, metadata: Sequence[dict]) -> tuple[list[int], list[dict]]:
        """(meta_set id per record, own metadata per record)."""
        return [0] * len(metadata), list(metadata)


class MetaSets(NoMetaSets):
    """Formats 2 and 3: string values two records of a batch share go to a set."""

    def present(self) -> bool:
        return self.file.has("meta_sets")

    def intern(self, conn: sqlite3.Connection, metadata: Sequence[dict]) -> tuple[list[int], list[dict]]:
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
                conn.execute(META_SETS)  # format 3: created with the first set
            if key not in found:
                row = conn.execute("SELECT id FROM meta_sets WHERE json = ?", (key,)).fetchone()
                found[key] = row[0] if row else conn.execute(
                    "INSERT INTO meta_sets(json) VALUES (?)", (key,)).lastrowid
            sets.append(found[key])
        return sets, own
