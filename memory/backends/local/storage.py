"""SQLite persistence of one store file: records, the store config, the lexicon; the local backend's door to SQL.

The file (one SQLite database, WAL journal) and the module that knows each part of it:

- ``meta`` (key → value: ``application`` = "hashmem", ``format_version``, ``config``
  (StoreConfig JSON), ``hasher`` (``np.savez_compressed`` archive; its float16 projection as
  two byte planes, see ``hashing``; format 2: uncompressed), ``quantizer`` (``np.savez``
  archive), ``deletes``, and the keys of the parts below): ``sqlfile`` (the connection,
  transactions, integrity), ``formats`` (the format's own keys, ``create``, ``load_config``).
- ``records`` (one row per passage: namespace, metadata, packed code, int8 vector, msgpack
  hints): ``records`` (what every format shares), ``formats`` (what differs: ids, creation
  times, code generations, counts; one ``RecordFormat`` subclass per format, chosen when
  the file is opened).
- ``batches`` (format 3: creation time per batch): ``formats``.
- ``lexicon`` / ``terms`` (format 1): ``lexicon`` (tables), ``lexicon_codec`` (block bytes).
- namespace ids and ``meta_sets`` (metadata shared by records, stored once): ``interning``.
- ``texts`` (text tier bodies), ``body_access`` (their last reads, kept once a store compacts),
  ``term_index`` (``termindex``) and ``ivf_lists`` (``partition``): ``sidetables``; dropping
  bodies for a byte budget: ``demotion``.
- ``api_keys`` (the servers' tenants): ``apikeys``.
- bytes by part (``dbstat``): ``filestats``.

Stores are created in format 3 (``config.FORMAT_VERSION``) with 16 KiB pages
(``PAGE_SIZE``, measured against 4 and 8 KiB in ``benchmarks/store_size.py``: records of
~500 bytes waste more of smaller pages); format 1 and 2 stores are read and written in their
own layout. Every write is one ``BEGIN IMMEDIATE … COMMIT`` transaction (``transaction``):
a killed process loses at most the batch it was writing; creating a store is one such
transaction (schema, settings and hashing parameters together).

What it does not do: embed, hash or rank. ``Storage`` only opens the parts and passes each
call to the part that owns it; its interface stays small (put, get, delete, iterate codes,
config) so another backend can replace it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

import numpy as np

from ...config import StoreConfig
from ...errors import StoreCorruptError
from ...filters import Where
from ...hints import Lexicon
from ..base import Row
from . import filestats, formats
from .apikeys import ApiKeyTable
from .sidetables import AccessTable, IvfListTable, RewriteLog, TermTable, TextTable
from .sqlfile import BUSY_TIMEOUT, INT64_MAX, StoreFile

PAGE_SIZE = 16384  # bytes per page of a new store file


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

    Attributes:
        file: the connection, transactions and meta table (``sqlfile.StoreFile``).
        records: the records' reader and writer in this file's format (``formats``).
        lexicon: the lexicon's tables in this file's format (``lexicon``).
        texts, access, ivf_lists, api_keys: the tables of ``sidetables`` and ``apikeys``.
        conn, path, readonly, busy_timeout: the file's.
        is_new: the file had no table when opened (until ``initialize``).
        batch_times, lexicon_blocks, meta_sets, namespace_ids: the format's (``RecordFormat``).
    """

    def __init__(self, path: str | os.PathLike, *, create: bool, readonly: bool = False,
                 busy_timeout: float = BUSY_TIMEOUT, durable: bool = False) -> None:
        self.file = StoreFile(path, create=create, readonly=readonly, busy_timeout=busy_timeout,
                              durable=durable, page_size=PAGE_SIZE)
        self.path, self.conn = self.file.path, self.file.conn
        self.is_new = not self.file.tables
        self.records = formats.open_format(self.file)
        self.lexicon = self.records.lexicon_type(self.file)
        self.texts = TextTable(self.file)
        self.access = AccessTable(self.file)
        self.term_table = TermTable(self.file)
        self.ivf_lists = IvfListTable(self.file, self.records.names)
        self.api_keys = ApiKeyTable(self.file)
        self.rewrites = RewriteLog(self.file)

    @property
    def readonly(self) -> bool:
        return self.file.readonly

    @readonly.setter
    def readonly(self, value: bool) -> None:  # tests: as for a file without write permission
        self.file.readonly = value

    @property
    def busy_timeout(self) -> float:
        return self.file.busy_timeout

    @busy_timeout.setter
    def busy_timeout(self, value: float) -> None:
        self.file.busy_timeout = value

    batch_times = property(lambda self: self.records.batch_times)
    lexicon_blocks = property(lambda self: self.records.lexicon_blocks)
    meta_sets = property(lambda self: self.records.meta_sets)
    namespace_ids = property(lambda self: self.records.namespace_ids)

    # -- lifecycle and transactions (sqlfile) ----------------------------------------------

    @property
    def closed(self) -> bool:
        return self.file.closed

    def close(self) -> None:
        self.access.close()
        self.file.close()

    def close_quietly(self) -> None:
        self.access.close()
        self.file.close_quietly()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """``sqlfile.StoreFile.transaction``: BEGIN IMMEDIATE … COMMIT, a StoreError on failure."""
        return self.file.transaction()

    def data_version(self) -> int:
        return self.file.data_version()

    def checkpoint(self) -> None:
        self.file.checkpoint()

    def check(self, *, bits: int, dim: int, generation: int | None, full: bool = False) -> None:
        """Integrity check: SQLite's own, then the records' shapes and code generation.

        Raises:
            StoreCorruptError: naming what is wrong.
        """
        try:
            self.file.check_integrity(full=full)
            self.records.check(bits=bits, dim=dim, generation=generation)
        except sqlite3.DatabaseError as e:
            raise StoreCorruptError(f"{self.path} is corrupted ({e})") from e

    # -- config and meta -------------------------------------------------------------------

    def initialize(self, config: StoreConfig, extra_meta: dict[str, bytes | str] | None = None) -> bool:
        """Create the schema and write the config (and ``extra_meta``) of a new store, in one transaction.

        Returns:
            True if this call created the store; False if another process created it
            first (then nothing is written and the caller opens the existing store).
        """
        created = formats.create(self.file, config, extra_meta)
        self.is_new = False
        return created

    def load_config(self) -> StoreConfig:
        return formats.load_config(self.file)

    def get_meta(self, key: str) -> bytes | str | None:
        return self.file.get_meta(key)

    def set_meta(self, conn: sqlite3.Connection, key: str, value: bytes | str) -> None:
        """Write one meta value inside the caller's transaction."""
        self.file.set_meta(conn, key, value)

    def delete_meta(self, conn: sqlite3.Connection, key: str) -> None:
        """Remove one meta value inside the caller's transaction."""
        self.file.delete_meta(conn, key)

    # -- records (records, formats) --------------------------------------------------------

    def last_id(self) -> int:
        """The highest record id ever assigned (ids are never reused); 0 for a new store."""
        return self.records.last_id()

    def insert(self, conn: sqlite3.Connection, *, namespace: str, metadata: Sequence[dict], codes: np.ndarray,
               qvecs: np.ndarray, hints: Sequence[bytes], gen: int, texts: Sequence[bytes] | None = None) -> list[int]:
        """Insert records (and their text bodies) inside the caller's transaction; returns their new ids in order."""
        ids = self.records.insert(conn, namespace=namespace, metadata=metadata, codes=codes, qvecs=qvecs,
                                  hints=hints, gen=gen)
        if texts is not None:
            self.texts.insert(conn, ids, texts)
        return ids

    def rewrite(self, conn: sqlite3.Connection, ids: Sequence[int], *, metadata: Sequence[dict], codes: np.ndarray,
                qvecs: np.ndarray, hints: Sequence[bytes], gen: int, texts: Sequence[bytes] | None = None) -> None:
        """Overwrite records (and their text bodies) in place inside the caller's transaction, and log
        which (``sidetables.RewriteLog``) so other processes' handles re-read their codes."""
        done = set(self.records.rewrite(conn, ids, metadata=metadata, codes=codes, qvecs=qvecs, hints=hints, gen=gen))
        if texts is not None and done:
            pairs = [(int(i), b) for i, b in zip(ids, texts, strict=True) if int(i) in done]
            self.texts.put(conn, [i for i, _ in pairs], [b for _, b in pairs])
        if done:
            self.rewrites.note(conn, sorted(done))

    def rewritten_since(self, seq: int, generation: int) -> dict[str, tuple[list[int], np.ndarray]]:
        """namespace → (ids, codes uint8 [n, bits/8]) of the records rewritten after rewrite ``seq``
        (``sidetables.RewriteLog``) whose codes are of ``generation``."""
        present, got = self.fetch_columns(self.rewrites.since(seq), ("namespace", "code", "gen"))
        by_ns: dict[str, list[int]] = {}
        for j, (ns, gen) in enumerate(zip(got["namespace"], got["gen"], strict=True)):
            if int(gen) == generation:
                by_ns.setdefault(ns, []).append(j)
        return {ns: ([present[j] for j in rows],
                     np.frombuffer(b"".join(got["code"][j] for j in rows), np.uint8).reshape(len(rows), -1))
                for ns, rows in by_ns.items()}

    def fetch(self, ids: Sequence[int]) -> dict[int, Row]:
        """Rows by id (missing ids, and ids no record can have, are absent from the result)."""
        return self.records.fetch(ids)

    def fetch_columns(self, ids: Sequence[int], fields: Sequence[str]) -> tuple[list[int], dict[str, list]]:
        """(present ids in the asked order, field → values): only the columns asked for, in one query."""
        return self.records.fetch_columns(ids, fields)

    def fetch_present_qvecs(self, ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask bool [len(ids)] of ids that exist, int8 [mask.sum(), dim] their vectors in the order of ids)."""
        return self.records.fetch_present_qvecs(ids, dim)

    def fetch_qvecs(self, ids: Sequence[int], dim: int) -> np.ndarray:
        """int8 [len(ids), dim] vectors in the order of ids (all must exist)."""
        return self.records.fetch_qvecs(ids, dim)

    def iter_codes(self, *, batch: int = 65536, after: int = -1,
                   upto: int = INT64_MAX) -> Iterator[tuple[np.ndarray, list[str], list[bytes], np.ndarray]]:
        """(ids int64, namespaces, code blobs, gens int64) of ids in (after, upto], in id order, in batches."""
        return self.records.iter_codes(batch=batch, after=after, upto=upto)

    def iter_qvecs(self, dim: int, *, namespace: str | None = None, batch: int = 65536, after: int = -1,
                   upto: int = INT64_MAX) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64 [b], int8 [b, dim]) over all records (or one namespace's) with ids in (after, upto], in id order."""
        return self.records.iter_qvecs(dim, namespace=namespace, batch=batch, after=after, upto=upto)

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
        """Overwrite codes and their generation inside the caller's transaction (format 3: every
        code shares one generation, so the caller re-encodes every row in this transaction)."""
        self.records.update_codes(conn, ids, codes, gen)

    def delete(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[int, str]]:
        """Delete records inside the caller's transaction; returns (id, namespace) of those that existed.

        Bumps the meta counter ``deletes`` when something was deleted, so other processes'
        open handles know to drop those ids (``deletes_count``).
        """
        return self.records.delete(conn, ids)

    def deletes_count(self) -> int:
        """How many delete transactions removed records (ever); see ``delete``."""
        return int(self.get_meta("deletes") or 0)

    def live_ids(self, namespace: str, upto: int) -> np.ndarray:
        """int64 ids of a namespace's records with id <= upto, ascending."""
        return self.records.live_ids(namespace, upto)

    def filter_ids(self, namespace: str, where: Where) -> list[int]:
        """Ids in a namespace whose metadata equals every key/value of a checked ``where``."""
        return self.records.filter_ids(namespace, where)

    def count(self, namespace: str | None = None) -> int:
        return self.records.count(namespace)

    def namespaces(self) -> dict[str, int]:
        return self.records.namespaces()

    # -- IVF lists (sidetables; memory.partition) and text bodies (sidetables; tiers.text) ---

    def set_lists(self, conn: sqlite3.Connection, ids: Sequence[int], lists: Sequence[int]) -> None:
        """Record (or replace) the IVF list of records inside the caller's transaction."""
        self.ivf_lists.set(conn, ids, lists)

    def lists_of(self, namespace: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, lists int32) of a namespace's records that have a list (none before a partition)."""
        return self.ivf_lists.of(namespace)

    def fetch_texts(self, ids: Sequence[int]) -> dict[int, bytes]:
        return self.texts.fetch(ids)

    def iter_texts(self, *, batch: int = 4096, after: int = -1) -> Iterator[tuple[list[int], list[bytes]]]:
        """(ids, bodies) of the ``texts`` table with id > after in id order, in batches (safe to update
        while iterating)."""
        return self.texts.iter(batch=batch, after=after)

    def update_texts(self, conn: sqlite3.Connection, ids: Sequence[int], bodies: Sequence[bytes]) -> None:
        """Overwrite text bodies inside the caller's transaction."""
        self.texts.update(conn, ids, bodies)

    # -- lexicon (lexicon) -----------------------------------------------------------------

    def load_lexicon(self) -> Lexicon:
        return self.lexicon.load()

    def terms(self, ids: Sequence[int]) -> dict[int, str]:
        """id → term for the given lexicon ids (without loading the whole lexicon)."""
        return self.lexicon.terms(ids)

    def save_lexicon(self, conn: sqlite3.Connection, lex: Lexicon, new_ids: Sequence[int], touched: set[int]) -> None:
        """Persist new terms and changed document frequencies inside the caller's transaction."""
        self.lexicon.save(conn, lex, new_ids, touched)

    # -- statistics (filestats) ------------------------------------------------------------

    def byte_sums(self) -> dict[str, int]:
        """Total stored bytes of each record part."""
        return filestats.byte_sums(self.file, self.lexicon)

    def file_bytes(self) -> int:
        """Size of the database file plus its WAL, as on disk now."""
        return filestats.file_bytes(self.path)

    def file_parts(self) -> dict[str, int]:
        """Bytes of the file and its WAL by part; they add up to ``file_bytes()`` (``filestats.file_parts``)."""
        return filestats.file_parts(self.file)

    # -- API keys (apikeys; memory.keys, the servers' tenants) -----------------------------

    def put_key(self, name: str, digest: str, grants: dict[str, str]) -> None:
        """Store a new key (its token's digest and grants) in one transaction; ConfigError if the name exists."""
        self.api_keys.put(name, digest, grants)

    def keys(self, *, digest: str | None = None) -> list[tuple[str, str, dict, float, float | None]]:
        """(name, digest, grants, created, revoked) of every key, or of the key with this digest."""
        return self.api_keys.rows(digest=digest)

    def revoke_key(self, name: str) -> bool:
        """Mark a key revoked; False when no valid key has this name."""
        return self.api_keys.revoke(name)
