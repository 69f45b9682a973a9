"""The default backend: one SQLite file (``storage.Storage``) + the in-RAM Hamming index (``index.HammingIndex``).

What it does not do: embed, hash, quantize or rank (``store``), SQL (``storage``) or
Hamming kernels (``index``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...config import StoreConfig
from ...hints import Lexicon
from ..base import Backend
from . import partition
from .index import HammingIndex
from .storage import Storage


class LocalBackend(Backend):
    """The default: one SQLite file (``storage.Storage``) + the in-RAM Hamming index (``index.HammingIndex``).

    Every call delegates to those two unchanged; this class adds only the bookkeeping
    that keeps the index in step with the file (ids seen, ``PRAGMA data_version``,
    deletes by other processes). Writes are SQLite transactions: a killed process loses
    at most the uncommitted batch.

    Args:
        path: the store file.
        create / readonly / durable: as ``storage.Storage``.
    """

    local = True
    where_dialect = "sqlite"  # filters.Where: keys and strings must be valid UTF-8

    def __init__(self, path, *, create: bool, readonly: bool = False, durable: bool = False) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.storage = Storage(self.path, create=create, readonly=readonly, durable=durable)
        self.index: HammingIndex | None = None
        self._seen_id = 0
        self._version = None
        self._deletes = 0
        self._index_gen = None

    # lifecycle / settings: straight to Storage
    readonly = property(lambda self: self.storage.readonly)
    is_new = property(lambda self: self.storage.is_new)

    @property
    def closed(self) -> bool:
        return self.storage.closed

    def close(self) -> None:
        self.storage.close()

    def checkpoint(self) -> None:
        self.storage.checkpoint()

    def discard_failed_creation(self, created: bool = False) -> None:
        empty = created and self.storage.is_new and not self._has_tables()
        self.storage.close_quietly()
        if empty:  # a store that failed to come into being leaves no file (never another process's)
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)

    def _has_tables(self) -> bool:
        try:
            return bool(self.storage.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        except Exception:  # noqa: BLE001 - deciding whether to clean up after another error
            return True

    def transaction(self):
        return self.storage.transaction()

    def initialize(self, config, extra_meta=None) -> bool:
        return self.storage.initialize(config, extra_meta)

    def load_config(self) -> StoreConfig:
        return self.storage.load_config()

    def get_meta(self, key):
        return self.storage.get_meta(key)

    def set_meta(self, txn, key, value) -> None:
        self.storage.set_meta(txn, key, value)

    def check(self, *, bits, dim, generation) -> None:
        self.storage.check(bits=bits, dim=dim, generation=generation)

    def load_lexicon(self) -> Lexicon:
        return self.storage.load_lexicon()

    def terms(self, ids):
        return self.storage.terms(ids)

    def save_lexicon(self, txn, lex, new_ids, touched) -> None:
        self.storage.save_lexicon(txn, lex, new_ids, touched)

    # records
    def insert(self, txn, **kw) -> list[int]:
        return self.storage.insert(txn, **kw)

    def fetch(self, ids):
        return self.storage.fetch(ids)

    def fetch_present_qvecs(self, ids, dim):
        return self.storage.fetch_present_qvecs(ids, dim)

    def fetch_qvecs(self, ids, dim):
        return self.storage.fetch_qvecs(ids, dim)

    def fetch_texts(self, ids):
        return self.storage.fetch_texts(ids)

    def body_store(self):
        return self.storage

    def delete(self, txn, ids):
        gone = self.storage.delete(txn, ids)
        self._deletes = self.storage.deletes_count()
        return gone

    def update_codes(self, txn, ids, codes, gen) -> None:
        self.storage.update_codes(txn, ids, codes, gen)

    def iter_qvecs(self, dim, *, after=-1, upto=None):
        if upto is None:
            return self.storage.iter_qvecs(dim, after=after)
        return self.storage.iter_qvecs(dim, after=after, upto=upto)

    def sample_qvecs(self, dim, n):
        return self.storage.sample_qvecs(dim, n)

    def last_id(self) -> int:
        return self.storage.last_id()

    def filter_ids(self, namespace, where):
        return self.storage.filter_ids(namespace, where)

    def count(self, namespace=None) -> int:
        return self.storage.count(namespace)

    def namespaces(self):
        return self.storage.namespaces()

    def byte_sums(self):
        return self.storage.byte_sums()

    def file_bytes(self) -> int:
        return self.storage.file_bytes()

    def file_parts(self):
        return self.storage.file_parts()

    # -- the in-RAM index ----------------------------------------------------------------

    def load_index(self, mem) -> None:
        """Build the in-RAM index from every stored code (and note the last id seen)."""
        # built aside and swapped in whole: a search in another thread meanwhile sees the old index,
        # never a half-filled one without some namespace (which the servers would answer with a 404)
        fresh = HammingIndex(mem.config.bits, ivf_min_rows=None)  # IVF lists: memory.partition
        seen = self.storage.last_id()
        for ids, namespaces, codes, _ in self.storage.iter_codes(batch=8192, upto=seen):
            self._index_rows(mem.config.bits, ids, namespaces, codes, fresh)
        self.index, self._index_gen, self._seen_id = fresh, mem.hasher.generation, seen
        partition.load(self._partition(mem.config.dim, mem.quantizer))  # large namespaces' IVF lists

    def _partition(self, dim: int, quantizer) -> partition.Target:
        return partition.Target(self.storage, self.index, dim, quantizer)

    # -- after-commit upkeep (base.AfterCommitUpkeep): the IVF lists of large namespaces ---------

    def ivf_lists(self, namespace, vectors, *, dim, quantizer):
        return partition.lists_for(self._partition(dim, quantizer), namespace, vectors)

    def store_ivf_lists(self, txn, ids, lists) -> None:
        self.storage.set_lists(txn, ids, lists)

    def upkeep(self, namespace, *, dim, quantizer, progress=False) -> None:
        partition.maybe_build(self._partition(dim, quantizer), namespace, progress=progress)

    def start(self, mem) -> None:
        """First load after open: remember the file's version and delete counter, then build the index."""
        self._version = self.storage.data_version()
        self._deletes = self.storage.deletes_count()
        self.load_index(mem)

    def _index_rows(self, bits: int, ids: np.ndarray, namespaces: list[str], codes: list[bytes],
                    index: HammingIndex | None = None) -> None:
        index = self.index if index is None else index
        arr = np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(ids), bits // 8)
        ns = np.array(namespaces, dtype=object)
        for name in dict.fromkeys(namespaces):  # few Python objects at once
            sel = ns == name
            index.add(name, ids[sel], arr[sel])

    def mark_synced(self) -> None:
        self._version = self.storage.data_version()

    def index_add(self, namespace, ids, codes, lists=None) -> None:
        self.index.add(namespace, ids, codes, lists)
        self._seen_id = max(self._seen_id, ids[-1])

    def index_remove(self, namespace, ids) -> None:
        self.index.remove(namespace, ids)

    def stale(self) -> bool:
        return not self.storage.closed and self.storage.data_version() != self._version

    def sync(self, mem) -> None:
        """Bring this handle up to the file's latest commit: other processes' adds, deletes and refits.

        Cheap when nothing changed (one ``PRAGMA data_version``). New rows are appended to
        the index (ids only grow), deleted ones dropped, and a refit elsewhere (new hashing
        parameters) reloads the whole index. Called before each search and inside each write
        transaction, where nobody else can commit meanwhile.
        """
        from ... import hashing, quantize

        if self.storage.closed:
            return
        version = self.storage.data_version()
        if version == self._version:
            return
        mem._lexicon = None  # document frequencies changed: reloaded by the next add
        raw = self.storage.get_meta("hasher")
        if mem.quantizer is None and (q := self.storage.get_meta("quantizer")) is not None:
            mem.quantizer = quantize.Quantizer.from_bytes(q)
        deletes = self.storage.deletes_count()
        deleted_elsewhere, self._deletes = deletes != self._deletes, deletes
        if raw is not None and bytes(raw) != mem._hasher_raw:  # refitted by another process
            mem._hasher_raw = bytes(raw)
            mem.hasher = hashing.Hasher.from_bytes(raw)
            self._version = version
            self.load_index(mem)
            return
        last = self.storage.last_id()
        full = False
        for ids, namespaces, codes, gens in self.storage.iter_codes(batch=8192, after=self._seen_id, upto=last):
            partitioned = {n for n in namespaces if (sp := self.index.spaces.get(n)) is not None and sp.is_ivf}
            if partitioned or np.any(gens != mem.hasher.generation):
                full = True  # a partitioned namespace needs each row's list: reload (rare, large stores)
                break
            self._index_rows(mem.config.bits, ids, namespaces, codes)
        if full:
            self._version = version
            self.load_index(mem)
            return
        if deleted_elsewhere:  # drop the ids another process deleted (a scan of the ids: deletes are rare)
            for name, space in list(self.index.spaces.items()):
                if space.n_alive:
                    gone = np.setdiff1d(space.live_ids(), self.storage.live_ids(name, last), assume_unique=True)
                    if len(gone):
                        self.index.remove(name, gone.tolist())
        self._seen_id = max(self._seen_id, last)
        self._version = version

    def hamming_topk(self, namespace, qcode, n, *, generation, allowed_ids=None, query_proj=None, query_vec=None):
        if generation != self._index_gen:  # the index holds one generation's codes (a refit reloads it)
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
        return self.index.search(namespace, qcode, n, allowed_ids=allowed_ids, query_proj=query_proj,
                                 query_vec=query_vec)

    def codes_of(self, namespace, ids):
        return self.index.spaces[namespace].codes_of(ids)

    def live_ids(self, namespace=None) -> np.ndarray:
        spaces = self.index.spaces.values() if namespace is None else [self.index.spaces.get(namespace)]
        out = [s.live_ids() for s in spaces if s is not None]
        return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)

    def n_records(self) -> int:
        return len(self.index)

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self.index.spaces

    def put_key(self, name, digest, grants) -> None:
        self.storage.put_key(name, digest, grants)

    def keys(self, *, digest=None):
        return self.storage.keys(digest=digest)

    def revoke_key(self, name) -> bool:
        return self.storage.revoke_key(name)
