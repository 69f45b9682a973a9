"""SQLite persistence: records, the store config, the lexicon; the only module that knows SQL.

File layout (one SQLite database, WAL journal):

- ``meta(key TEXT PRIMARY KEY, value BLOB)``: ``application`` = "hashmem",
  ``format_version`` (int as text), ``config`` (StoreConfig JSON), ``hasher``
  and ``quantizer`` (``np.savez`` archives of float32 little-endian arrays),
  ``lexicon_docs`` (passages the lexicon has counted).
- ``records(id INTEGER PRIMARY KEY AUTOINCREMENT, namespace, created REAL (Unix
  time), metadata TEXT (JSON object), code BLOB (packed bits, bits/8 bytes, see
  ``hashing``), qvec BLOB (int8 × dim), hints BLOB (msgpack, see ``hints``),
  gen INTEGER (hasher generation the code was made with))``. Ids are never reused.
- ``terms(id INTEGER PRIMARY KEY, term TEXT UNIQUE, df INTEGER)``: the lexicon.
- ``texts(id INTEGER PRIMARY KEY, body BLOB)``: exact passages, only for the
  ``text`` fidelity tier.

Every write happens in one ``BEGIN IMMEDIATE … COMMIT`` transaction, so a killed
process loses at most the batch it was writing.

What it does not do: embed, hash or rank. Its interface stays small (put, get,
delete, iterate codes, config) so another backend can replace it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import FORMAT_VERSION, StoreConfig
from .errors import ConfigError, StoreCorruptError, StoreError
from .hints import Lexicon

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    created REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    code BLOB NOT NULL,
    qvec BLOB NOT NULL,
    hints BLOB NOT NULL,
    gen INTEGER NOT NULL
);
CREATE INDEX records_namespace ON records(namespace, id);
CREATE TABLE terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE, df INTEGER NOT NULL);
CREATE TABLE texts (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE ivf_lists (id INTEGER PRIMARY KEY, list INTEGER NOT NULL);
"""
# tables added after format 1 stores were first written; created on opening such a store for writing
_LATER_TABLES = "CREATE TABLE IF NOT EXISTS ivf_lists (id INTEGER PRIMARY KEY, list INTEGER NOT NULL);"


@dataclass(frozen=True)
class Row:
    """One stored record as the storage layer sees it."""

    id: int
    namespace: str
    created: float
    metadata: dict
    code: bytes
    qvec: bytes
    hints: bytes
    gen: int


def _describe(path: Path, exc: Exception) -> str:
    return f"{path}: {exc}"


class Storage:
    """One open hashmem SQLite file."""

    def __init__(self, path: str | os.PathLike, *, create: bool) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; give a file path for the store")
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and not create:
            raise StoreError(f"no store at {self.path}; create one with `hashmem init` or Memory(path)")
        if not exists and not self.path.parent.exists():
            raise StoreError(f"directory {self.path.parent} does not exist; create it first")
        if exists and not os.access(self.path, os.R_OK):
            raise StoreError(f"cannot read {self.path}: permission denied")
        self.readonly = exists and not os.access(self.path, os.W_OK)
        self._closed = False
        try:
            uri = f"file:{self.path}{'?mode=ro' if self.readonly else ''}"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            if not self.readonly:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            self._close_quietly()
            if "not a database" in str(e) or "malformed" in str(e):
                raise StoreCorruptError(f"{self.path} is not a hashmem store or is corrupted ({e})") from e
            raise StoreError(_describe(self.path, e)) from e
        self.is_new = not tables
        if tables and not {"meta", "records", "terms"} <= tables:
            self._close_quietly()
            raise StoreCorruptError(f"{self.path} is an SQLite file but not a hashmem store")
        if tables and not self.readonly and "ivf_lists" not in tables:
            self.conn.execute(_LATER_TABLES)
        self.has_ivf_lists = not tables or not self.readonly or "ivf_lists" in tables

    def _close_quietly(self) -> None:
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
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception."""
        if self.readonly:
            raise StoreError(f"cannot write {self.path}: the file is read-only")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(f"cannot write {self.path}: {e}") from e
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"cannot write {self.path}: {e}") from e

    # -- config and meta ---------------------------------------------------------------

    def initialize(self, config: StoreConfig) -> None:
        """Create the schema and write the config of a new store."""
        with self.transaction() as c:
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
                ],
            )
        self.is_new = False

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
            if generation is not None:
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
        for j in range(len(hints)):
            cur = conn.execute(
                "INSERT INTO records(namespace, created, metadata, code, qvec, hints, gen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    namespace,
                    now,
                    json.dumps(metadata[j], ensure_ascii=False, sort_keys=True),
                    codes[j].tobytes(),
                    qvecs[j].tobytes(),
                    hints[j],
                    gen,
                ),
            )
            ids.append(cur.lastrowid)
        if texts is not None:
            conn.executemany("INSERT INTO texts(id, body) VALUES (?, ?)", zip(ids, texts, strict=True))
        return ids

    def fetch(self, ids: Sequence[int]) -> dict[int, Row]:
        """Rows by id (missing ids are absent from the result)."""
        out: dict[int, Row] = {}
        for chunk in _chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                "SELECT id, namespace, created, metadata, code, qvec, hints, gen "
                f"FROM records WHERE id IN ({q})",
                chunk,
            ):
                out[r[0]] = Row(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7])
        return out

    def fetch_qvecs(self, ids: Sequence[int], dim: int) -> np.ndarray:
        """int8 [len(ids), dim] vectors in the order of ids (all must exist)."""
        out = np.empty((len(ids), dim), dtype=np.int8)
        pos = {i: j for j, i in enumerate(ids)}
        for chunk in _chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            for i, blob in self.conn.execute(f"SELECT id, qvec FROM records WHERE id IN ({q})", chunk):
                out[pos[i]] = np.frombuffer(blob, dtype=np.int8)
        return out

    def fetch_texts(self, ids: Sequence[int]) -> dict[int, bytes]:
        out = {}
        for chunk in _chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            out.update(self.conn.execute(f"SELECT id, body FROM texts WHERE id IN ({q})", chunk))
        return out

    def iter_codes(self, *, batch: int = 65536) -> Iterator[tuple[np.ndarray, list[str], list[bytes], np.ndarray]]:
        """(ids int64, namespaces, code blobs, gens int64) in id order, in batches."""
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT id, namespace, code, gen FROM records WHERE id > ? ORDER BY id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield (
                np.array([r[0] for r in rows], dtype=np.int64),
                [r[1] for r in rows],
                [r[2] for r in rows],
                np.array([r[3] for r in rows], dtype=np.int64),
            )

    def iter_qvecs(self, dim: int, *, namespace: str | None = None,
                   batch: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64 [b], int8 [b, dim]) over all records (or one namespace's) in id order."""
        where, args = ("namespace = ? AND ", (namespace,)) if namespace is not None else ("", ())
        last = -1
        while True:
            rows = self.conn.execute(
                f"SELECT id, qvec FROM records WHERE {where}id > ? ORDER BY id LIMIT ?", (*args, last, batch)
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
        """Overwrite codes and their generation inside the caller's transaction."""
        conn.executemany(
            "UPDATE records SET code = ?, gen = ? WHERE id = ?",
            ((codes[j].tobytes(), gen, int(ids[j])) for j in range(len(ids))),
        )

    def delete(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[int, str]]:
        """Delete records inside the caller's transaction; returns (id, namespace) of those that existed."""
        gone = []
        for chunk in _chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            gone += conn.execute(f"SELECT id, namespace FROM records WHERE id IN ({q})", chunk).fetchall()
            conn.execute(f"DELETE FROM records WHERE id IN ({q})", chunk)
            conn.execute(f"DELETE FROM texts WHERE id IN ({q})", chunk)
            if self.has_ivf_lists:
                conn.execute(f"DELETE FROM ivf_lists WHERE id IN ({q})", chunk)
        return gone

    # -- IVF lists of vector partitions (memory.partition) -------------------------------

    def set_lists(self, conn: sqlite3.Connection, ids: Sequence[int], lists: Sequence[int]) -> None:
        """Record (or replace) the IVF list of records inside the caller's transaction."""
        conn.executemany("INSERT OR REPLACE INTO ivf_lists(id, list) VALUES (?, ?)",
                         zip((int(i) for i in ids), (int(x) for x in lists), strict=True))

    def lists_of(self, namespace: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, lists int32) of a namespace's records that have a list (none before a partition)."""
        if not self.has_ivf_lists:
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        cur = self.conn.execute(
            "SELECT l.id, l.list FROM ivf_lists l JOIN records r ON r.id = l.id WHERE r.namespace = ? ORDER BY l.id",
            (namespace,),
        )
        parts = []  # 64k rows at a time: never a million Python tuples at once
        while rows := cur.fetchmany(65536):
            parts.append(np.array(rows, dtype=np.int64))
        arr = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
        return arr[:, 0].copy(), arr[:, 1].astype(np.int32)

    def filter_ids(self, namespace: str, where: dict) -> list[int]:
        """Ids in a namespace whose metadata equals every key/value in ``where``."""
        clauses, args = ["namespace = ?"], [namespace]
        for key, value in where.items():
            if not isinstance(key, str) or not key or '"' in key:
                raise ConfigError(f"metadata keys in where must be non-empty strings without quotes, got {key!r}")
            if isinstance(value, bool):
                value = int(value)
            elif value is not None and not isinstance(value, str | int | float):
                raise ConfigError(f"where values must be str, int, float, bool or None, got {type(value).__name__}")
            if value is None:
                clauses.append(f"json_extract(metadata, '$.\"{key}\"') IS NULL")
            else:
                clauses.append(f"json_extract(metadata, '$.\"{key}\"') = ?")
                args.append(value)
        sql = f"SELECT id FROM records WHERE {' AND '.join(clauses)}"
        return [r[0] for r in self.conn.execute(sql, args)]

    # -- lexicon -----------------------------------------------------------------------

    def load_lexicon(self) -> Lexicon:
        lex = Lexicon(n_docs=int(self.get_meta("lexicon_docs") or 0))
        rows = self.conn.execute("SELECT id, term, df FROM terms ORDER BY id").fetchall()
        for expected, (i, term, df) in enumerate(rows):
            if i != expected:
                raise StoreCorruptError(f"{self.path}: the lexicon has a gap at term id {expected}")
            lex.terms.append(term)
            lex.ids[term] = i
            lex.df.append(df)
        return lex

    def terms(self, ids: Sequence[int]) -> dict[int, str]:
        """id → term for the given lexicon ids (without loading the whole lexicon)."""
        out: dict[int, str] = {}
        for chunk in _chunks(sorted(set(ids)), 900):
            q = ",".join("?" * len(chunk))
            out.update(self.conn.execute(f"SELECT id, term FROM terms WHERE id IN ({q})", chunk))
        return out

    def save_lexicon(self, conn: sqlite3.Connection, lex: Lexicon, new_ids: Sequence[int], touched: set[int]) -> None:
        """Persist new terms and changed document frequencies inside the caller's transaction."""
        new = set(new_ids)
        conn.executemany(
            "INSERT INTO terms(id, term, df) VALUES (?, ?, ?)", ((i, lex.terms[i], lex.df[i]) for i in new_ids)
        )
        conn.executemany(
            "UPDATE terms SET df = ? WHERE id = ?", ((lex.df[i], i) for i in touched if i not in new)
        )
        self.set_meta(conn, "lexicon_docs", str(lex.n_docs))

    # -- statistics --------------------------------------------------------------------

    def count(self, namespace: str | None = None) -> int:
        if namespace is None:
            return self.conn.execute("SELECT count(*) FROM records").fetchone()[0]
        return self.conn.execute("SELECT count(*) FROM records WHERE namespace = ?", (namespace,)).fetchone()[0]

    def namespaces(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT namespace, count(*) FROM records GROUP BY namespace ORDER BY namespace"))

    def byte_sums(self) -> dict[str, int]:
        """Total stored bytes of each record part."""
        r = self.conn.execute(
            "SELECT count(*), coalesce(sum(length(code)),0), coalesce(sum(length(qvec)),0), "
            "coalesce(sum(length(hints)),0), coalesce(sum(length(CAST(metadata AS BLOB))),0) FROM records"
        ).fetchone()
        texts = self.conn.execute("SELECT coalesce(sum(length(body)),0) FROM texts").fetchone()[0]
        # the text tier's zstd dictionaries (meta rows text_dict.<generation>) count as text bytes
        texts += self.conn.execute(
            "SELECT coalesce(sum(length(value)),0) FROM meta WHERE key LIKE 'text\\_dict.%' ESCAPE '\\'"
        ).fetchone()[0]
        terms = self.conn.execute("SELECT coalesce(sum(length(CAST(term AS BLOB))) + 9 * count(*),0) FROM terms").fetchone()[0]
        return {"records": r[0], "code": r[1], "qvec": r[2], "hints": r[3], "metadata": r[4], "text": texts, "lexicon": terms}

    def file_bytes(self) -> int:
        """Size of the database file plus its WAL, as on disk now."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def checkpoint(self) -> None:
        if not self.readonly:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- text tier (memory.texttier) ---------------------------------------------------

    def iter_texts(self, *, batch: int = 4096) -> Iterator[tuple[list[int], list[bytes]]]:
        """(ids, bodies) of the ``texts`` table in id order, in batches (safe to update while iterating)."""
        last = -1
        while True:
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

