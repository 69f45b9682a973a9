"""The ``records`` table: what every on-disk format reads and writes alike (``RecordFormat``).

Format 3 layout: ``records(id INTEGER PRIMARY KEY, namespace INTEGER (an interned id,
``interning``), metadata TEXT (JSON object, compact: ``separators=(",", ":")``, sorted keys,
``ensure_ascii=False``), meta_set INTEGER (0: none; ``interning``), code BLOB (packed bits,
bits/8 bytes, see ``hashing``), qvec BLOB (int8 × dim, one byte per dimension, see
``quantize``), hints BLOB (msgpack, see ``hints``))``. Ids are never reused. Formats 1 and 2
add ``created REAL`` and ``gen INTEGER`` per record (``formats``).

Meta row ``deletes``: how many delete transactions removed records, so other processes' open
handles know to drop ids. ``fetch`` and ``delete`` skip ids no record can have (<= 0 or past
int64); every statement binds at most 900 ids.

What it does not do: the parts that differ between formats (ids, creation time, code
generation, counts: the subclasses in ``formats``), interning (``interning``), texts and IVF
lists (``sidetables``), the lexicon (``lexicon``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence

import numpy as np

from ...errors import StoreCorruptError, reading_stored
from ...filters import Where
from ..base import RECORD, Row
from .interning import InlineNames, NoMetaSets
from .sidetables import KEYED_BY_RECORD
from .sqlfile import INT64_MAX, StoreFile, chunks


class RecordFormat:
    """Reads and writes the records of one open file; a subclass per on-disk format (``formats``)
    fills in what differs. Chosen once, when the file is opened (``formats.open_format``).

    Attributes:
        file: the open file.
        names: namespace name ↔ what ``records.namespace`` holds (a ``names_type``, ``interning``).
        sets: interning of shared metadata values (a ``sets_type``, ``interning``).
        lexicon_type: the class of this format's lexicon tables (``lexicon``).
        batch_times, lexicon_blocks, meta_sets, namespace_ids: what this format has (format 3:
            creation times per batch; 2 and 3: lexicon blocks, metadata sets, namespace ids).
    """

    version = 0
    batch_times = lexicon_blocks = meta_sets = namespace_ids = False
    names_type: type[InlineNames] = InlineNames
    sets_type: type[NoMetaSets] = NoMetaSets
    lexicon_type: type | None = None
    own_columns = ""  # ``records`` columns an insert fills besides the shared five and meta_set
    created_sql = "r.created"  # a record's creation time, in a query over ``records r``

    def __init__(self, file: StoreFile) -> None:
        self.file = file
        self.names = self.names_type(file)
        self.sets = self.sets_type(file)

    # -- what each format fills in -------------------------------------------------------

    def last_id(self) -> int:
        """The highest record id ever assigned (ids are never reused); 0 for a new store."""
        raise NotImplementedError

    def gen_sql(self, alias: str = "") -> str:
        """The SQL expression of a record's code generation (``alias``: ``"r."`` or ``""``)."""
        raise NotImplementedError

    def new_rows(self, conn: sqlite3.Connection, n: int, gen: int, now: float) -> list[tuple]:
        """The values of ``own_columns`` for ``n`` records about to be inserted (and what the format
        keeps per batch before them)."""
        raise NotImplementedError

    def rows_added(self, conn: sqlite3.Connection, ids: list[int], now: float) -> None:
        """What the format keeps per batch after its records are in."""

    def rows_deleted(self, conn: sqlite3.Connection, n: int) -> None:
        """What the format keeps when ``n`` records were deleted."""

    def update_codes(self, conn: sqlite3.Connection, ids: np.ndarray, codes: np.ndarray, gen: int) -> None:
        """Overwrite codes and their generation inside the caller's transaction."""
        raise NotImplementedError

    def rewrite_gen(self, conn: sqlite3.Connection, gen: int) -> tuple[str, tuple]:
        """The SET clause part and value a rewrite of codes of generation ``gen`` adds (``rewrite``)."""
        raise NotImplementedError

    def check_generation(self, generation: int) -> None:
        """Raise StoreCorruptError when stored codes are of another generation than ``generation``."""
        raise NotImplementedError

    # -- the same in every format --------------------------------------------------------

    def check(self, *, bits: int, dim: int, generation: int | None) -> None:
        """The records' code and vector sizes, and their code generation.

        Raises:
            StoreCorruptError: naming what is wrong.
        """
        bad = self.file.conn.execute(
            "SELECT count(*) FROM records WHERE length(code) != ? OR length(qvec) != ?",
            (bits // 8, dim),
        ).fetchone()[0]
        if bad:
            raise StoreCorruptError(f"{self.file.path}: {bad} records have codes or vectors of the wrong size")
        if generation is not None:
            self.check_generation(generation)

    def insert(self, conn: sqlite3.Connection, *, namespace: str, metadata: Sequence[dict], codes: np.ndarray,
               qvecs: np.ndarray, hints: Sequence[bytes], gen: int) -> list[int]:
        """Insert records inside the caller's transaction; returns their new ids in order."""
        now = time.time()
        ids = []
        sets, own = self.sets.intern(conn, metadata)
        ns = self.names.key(namespace, conn=conn)
        cols = "namespace, metadata, code, qvec, hints" + self.own_columns + (", meta_set" if self.meta_sets else "")
        sql = f"INSERT INTO records({cols}) VALUES ({', '.join('?' * (cols.count(',') + 1))})"
        extra = self.new_rows(conn, len(hints), gen, now)
        if self.meta_sets:
            extra = [e + (s,) for e, s in zip(extra, sets, strict=False)]
        for j in range(len(hints)):
            cur = conn.execute(
                sql,
                (
                    ns,
                    json.dumps(own[j], ensure_ascii=False, sort_keys=True, separators=(",", ":")),
                    codes[j].tobytes(),
                    qvecs[j].tobytes(),
                    hints[j],
                    *extra[j],
                ),
            )
            ids.append(cur.lastrowid)
        self.rows_added(conn, ids, now)
        return ids

    def rewrite(self, conn: sqlite3.Connection, ids: Sequence[int], *, metadata: Sequence[dict], codes: np.ndarray,
                qvecs: np.ndarray, hints: Sequence[bytes], gen: int) -> list[int]:
        """Overwrite records in place inside the caller's transaction (namespace, id and creation
        time stay); returns the ids that existed (the others are left alone)."""
        sets, own = self.sets.intern(conn, metadata)
        gen_set, gen_value = self.rewrite_gen(conn, gen)
        cols = "metadata = ?, code = ?, qvec = ?, hints = ?" + (", meta_set = ?" if self.meta_sets else "") + gen_set
        done = []
        for j, i in enumerate(ids):
            values = (json.dumps(own[j], ensure_ascii=False, sort_keys=True, separators=(",", ":")),
                      codes[j].tobytes(), qvecs[j].tobytes(), hints[j], *((sets[j],) if self.meta_sets else ()),
                      *gen_value)
            if conn.execute(f"UPDATE records SET {cols} WHERE id = ?", (*values, int(i))).rowcount:
                done.append(int(i))
        return done

    def fetch(self, ids: Sequence[int]) -> dict[int, Row]:
        """Rows by id (missing ids, and ids no record can have, are absent from the result)."""
        present, columns = self.fetch_columns(ids, RECORD)
        return {i: Row(i, *values) for i, values in zip(present, zip(*columns.values(), strict=True), strict=True)}

    def fetch_columns(self, ids: Sequence[int], fields: Sequence[str]) -> tuple[list[int], dict[str, list]]:
        """(present ids in the asked order, field → values in that order) for fields of ``Row``.

        One query reading only the columns asked for: a hit shows namespace, metadata and
        hints; hybrid's stage 3 reads qvec and hints. ``fetch`` reads whole rows.
        """
        sql = {"namespace": "r.namespace", "metadata": "r.metadata", "code": "r.code", "qvec": "r.qvec",
               "hints": "r.hints", "created": self.created_sql, "gen": self.gen_sql("r.")}
        unknown = [f for f in fields if f not in sql]
        if unknown:
            raise ValueError(f"no record field {unknown[0]!r}; fields are {', '.join(sql)}")
        sets = "metadata" in fields and self.sets.present()
        cols = [sql[f] for f in fields] + (["s.json"] if sets else [])
        join = "LEFT JOIN meta_sets s ON s.id = r.meta_set " if sets else ""
        found: dict[int, tuple] = {}
        for chunk in chunks([i for i in ids if 0 < i <= INT64_MAX], 900):
            q = ",".join("?" * len(chunk))
            found.update((r[0], r[1:]) for r in self.file.conn.execute(
                f"SELECT r.id, {', '.join(cols)} FROM records r {join}WHERE r.id IN ({q})", chunk).fetchall())
        present = [i for i in ids if i in found]
        rows = [found[i] for i in present]
        columns = {f: [r[j] for r in rows] for j, f in enumerate(fields)}
        if "namespace" in columns:
            columns["namespace"] = list(map(self.names.name, columns["namespace"]))
        if "metadata" in columns:
            j = list(fields).index("metadata")
            columns["metadata"] = [self._metadata(i, r[j], r[-1] if sets else None)
                                    for i, r in zip(present, rows, strict=True)]
        return present, columns

    @staticmethod
    def _metadata(id: int, own: str, common: str | None) -> dict:
        with reading_stored(f"the metadata of record {id}"):
            meta = json.loads(own)
            if common is not None:
                meta = dict(sorted({**json.loads(common), **meta}.items()))
        return meta

    def fetch_present_qvecs(self, ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask bool [len(ids)] of ids that exist, int8 [mask.sum(), dim] their vectors in the order of ids).

        For readers racing another process's delete: a missing id is left out, never garbage.
        """
        found: dict[int, bytes] = {}
        asked = np.asarray(ids).tolist()  # Python ints, converted once
        for chunk in chunks(asked, 900):
            q = ",".join("?" * len(chunk))
            found.update(self.file.conn.execute(f"SELECT id, qvec FROM records WHERE id IN ({q})", chunk).fetchall())
        mask = np.fromiter(map(found.__contains__, asked), dtype=bool, count=len(asked))
        blob = b"".join([found[i] for i in asked if i in found])
        return mask, np.frombuffer(blob, dtype=np.int8).reshape(len(blob) // dim if dim else 0, dim)

    def fetch_qvecs(self, ids: Sequence[int], dim: int) -> np.ndarray:
        """int8 [len(ids), dim] vectors in the order of ids (all must exist)."""
        out = np.empty((len(ids), dim), dtype=np.int8)
        pos = {i: j for j, i in enumerate(ids)}
        for chunk in chunks(list(ids), 900):
            q = ",".join("?" * len(chunk))
            for i, blob in self.file.conn.execute(f"SELECT id, qvec FROM records WHERE id IN ({q})", chunk).fetchall():
                out[pos[i]] = np.frombuffer(blob, dtype=np.int8)
        return out

    def iter_codes(self, *, batch: int = 65536, after: int = -1,
                   upto: int = INT64_MAX) -> Iterator[tuple[np.ndarray, list[str], list[bytes], np.ndarray]]:
        """(ids int64, namespaces, code blobs, gens int64) of ids in (after, upto], in id order, in batches."""
        gen, name = self.gen_sql(), self.names.name
        last = after
        while True:
            rows = self.file.conn.execute(
                f"SELECT id, namespace, code, {gen} FROM records WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (last, upto, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield (
                np.array([r[0] for r in rows], dtype=np.int64),
                [name(r[1]) for r in rows],
                [r[2] for r in rows],
                np.array([r[3] for r in rows], dtype=np.int64),
            )

    def iter_qvecs(self, dim: int, *, namespace: str | None = None, batch: int = 65536, after: int = -1,
                   upto: int = INT64_MAX) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64 [b], int8 [b, dim]) over all records (or one namespace's) with ids in (after, upto], in id order."""
        where, args = ("namespace = ? AND ", (self.names.key(namespace),)) if namespace is not None else ("", ())
        last = after
        while True:
            rows = self.file.conn.execute(
                f"SELECT id, qvec FROM records WHERE {where}id > ? AND id <= ? ORDER BY id LIMIT ?",
                (*args, last, upto, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.int8).reshape(len(rows), dim)
            yield ids, vecs

    def delete(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[int, str]]:
        """Delete records (and their rows of the side tables) inside the caller's transaction; returns
        (id, namespace) of those that existed, and bumps meta ``deletes`` when there were some."""
        gone = []
        for chunk in chunks(sorted({i for i in ids if 0 < i <= INT64_MAX}), 900):
            q = ",".join("?" * len(chunk))
            gone += [(i, self.names.name(ns)) for i, ns in
                     conn.execute(f"SELECT id, namespace FROM records WHERE id IN ({q})", chunk)]
            conn.execute(f"DELETE FROM records WHERE id IN ({q})", chunk)
            for table in KEYED_BY_RECORD:
                if self.file.has(table):
                    conn.execute(f"DELETE FROM {table} WHERE id IN ({q})", chunk)
        if gone:
            self.rows_deleted(conn, len(gone))
            conn.execute("INSERT INTO meta(key, value) VALUES ('deletes', 1) "
                         "ON CONFLICT(key) DO UPDATE SET value = value + 1")
        return gone

    def live_ids(self, namespace: str, upto: int) -> np.ndarray:
        """int64 ids of a namespace's records with id <= upto, ascending."""
        cur = self.file.conn.execute("SELECT id FROM records WHERE namespace = ? AND id <= ? ORDER BY id",
                                     (self.names.key(namespace), upto))
        return id_array(cur)

    def filter_ids(self, namespace: str, where: Where) -> list[int]:
        """Ids in a namespace whose metadata equals every key/value of a checked ``where``
        (``filters.Where``: exact JSON types, keys and values bound as parameters).

        A record's metadata is its own object merged with its interned ``meta_set``
        (disjoint keys; sets hold only strings, so the merge keeps the record's explicit nulls).
        """
        sets = self.sets.present()
        join = "LEFT JOIN meta_sets s ON s.id = r.meta_set " if sets else ""
        clauses, args = where.to_sql("json_patch(r.metadata, coalesce(s.json, '{}'))" if sets else "r.metadata")
        clauses, args = ["r.namespace = ?", *clauses], [self.names.key(namespace), *args]
        sql = f"SELECT r.id FROM records r {join}WHERE {' AND '.join(clauses)}"  # only fixed clause texts are joined
        return [r[0] for r in self.file.conn.execute(sql, args)]

    def count(self, namespace: str | None = None) -> int:
        """Records in the store, or in one namespace."""
        if namespace is None:
            return self.file.conn.execute("SELECT count(*) FROM records").fetchone()[0]
        return self.file.conn.execute("SELECT count(*) FROM records WHERE namespace = ?",
                                      (self.names.key(namespace),)).fetchone()[0]

    def namespaces(self) -> dict[str, int]:
        """Name → record count of every namespace that has records, by name."""
        counts = self.file.conn.execute("SELECT namespace, count(*) FROM records GROUP BY namespace").fetchall()
        return dict(sorted((self.names.name(k), n) for k, n in counts))


def id_array(cur: sqlite3.Cursor) -> np.ndarray:
    """int64 of the first column of a cursor's rows, read 64k rows at a time."""
    parts = []
    while rows := cur.fetchmany(65536):
        parts.append(np.array([r[0] for r in rows], dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)
