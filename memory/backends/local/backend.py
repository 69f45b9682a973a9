"""The default backend: one SQLite file (``storage.Storage``) + the in-RAM Hamming index (``index.HammingIndex``).

What it does not do: embed, hash, quantize or rank (``store``, ``search``), SQL
(``storage``) or Hamming kernels (``index``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ...config import StoreConfig
from ...errors import StoreCorruptError
from ...hints import Lexicon
from ...search import Candidates
from ..base import RECORD, Backend, Rows
from . import partition
from .demotion import LocalDemotion
from .index import HammingIndex
from .storage import Storage
from .terms import LocalTerms

_INT64_MAX = 2**63 - 1


class LocalBackend(LocalDemotion, LocalTerms, Backend):
    """The default: one SQLite file (``storage.Storage``) + the in-RAM Hamming index (``index.HammingIndex``).

    Reads and writes go to ``Storage``; this class adds the index and the bookkeeping that
    keeps it in step with the file (ids seen, ``PRAGMA data_version``, deletes by other
    processes). Writes are SQLite transactions: a killed process loses at most the
    uncommitted batch. Implements ``AfterCommitUpkeep``, ``ApiKeys``, ``FileStatistics`` and
    ``BodyDemotion`` (``demotion``).

    Args:
        path: the store file.
        create / readonly / durable: as ``storage.Storage``.

    Raises:
        StoreCorruptError: opened read-only where there is no store (an empty file or none).
    """

    where_dialect = "sqlite"  # filters.Where: keys and strings must be valid UTF-8

    def __init__(self, path, *, create: bool, readonly: bool = False, durable: bool = False) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.storage = Storage(self.path, create=create, readonly=readonly, durable=durable)
        if readonly and self.storage.is_new:  # a zero-byte file or none: Storage says "no store"
            self.storage.close_quietly()
            raise StoreCorruptError(f"{self.path} is an SQLite database with no tables, not a hashmem store "
                                    "(an empty database, or a creation killed before its commit); create a "
                                    "store there with `hashmem init` or Memory(path)")
        self.index: HammingIndex | None = None
        self._dim = 0
        self._seen_id = 0
        self._version = None
        self._deletes = 0
        self._rewrites = 0
        self._hasher = None  # the hasher the index's codes were made with

    readonly = property(lambda self: self.storage.readonly)
    is_new = property(lambda self: self.storage.is_new)

    # -- lifecycle and settings ----------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.storage.closed

    def close(self) -> None:
        if self.storage.closed:
            return
        try:
            self.storage.checkpoint()
        finally:
            self.storage.close()

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

    def initialize(self, config, settings=None) -> bool:
        self._dim = config.dim
        return self.storage.initialize(config, settings)

    def load_config(self) -> StoreConfig:
        config = self.storage.load_config()
        self._dim = config.dim
        return config

    def check(self, *, bits, dim, generation) -> None:
        self.storage.check(bits=bits, dim=dim, generation=generation)

    def setting(self, key):
        return self.storage.get_meta(key)

    def put_setting(self, txn, key, value) -> None:
        self.storage.set_meta(txn, key, value)

    def changes(self, since):
        """Cheap when nothing moved: one ``PRAGMA data_version`` (it changes when another connection commits)."""
        version = str(self.storage.data_version())  # first: a commit after this is seen next time
        if since.get("records") == version:
            return {}
        moved = {"records": version, "lexicon": version}
        raw = self.storage.get_meta("hasher")
        if raw is not None and (tag := hashlib.sha1(bytes(raw)).hexdigest()) != since.get("hasher"):
            moved["hasher"] = tag
        if "quantizer" not in since and self.storage.get_meta("quantizer") is not None:
            moved["quantizer"] = "set"  # written once, with the first add
        return moved

    def stale(self) -> bool:
        return not self.storage.closed and str(self.storage.data_version()) != self._version

    # -- records -------------------------------------------------------------------------

    def insert(self, txn, **kw) -> list[int]:
        return self.storage.insert(txn, **kw)

    def delete(self, txn, ids):
        gone = self.storage.delete(txn, ids)
        self._deletes = self.storage.deletes_count()
        return gone

    def rewrite(self, txn, ids, **kw) -> None:
        self.storage.rewrite(txn, ids, **kw)

    def update(self, txn, ids, *, codes, gen) -> None:
        self.storage.update_codes(txn, ids, codes, gen)

    def rows(self, ids, fields=RECORD) -> Rows:
        fields = tuple(fields)
        if fields == ("qvec",):  # stage 3's read: one column, no Row objects
            asked = np.asarray(ids, dtype=np.int64)
            present, qv = self.storage.fetch_present_qvecs(asked, self._dim)
            return Rows(asked[present], {"qvec": qv})
        if fields == ("text",):
            return Rows.of(ids, self.storage.fetch_texts([int(i) for i in ids]), fields)
        if "text" in fields:
            raise ValueError("rows: ask for text alone")
        present, columns = self.storage.fetch_columns([int(i) for i in ids], fields)  # only these columns
        return Rows(np.array(present, dtype=np.int64), columns)

    def scan(self, field, *, after=-1, upto=None):
        upto = _INT64_MAX if upto is None else upto
        if field == "qvec":
            return self.storage.iter_qvecs(self._dim, after=after, upto=upto)
        if field == "code":
            return ((ids, np.frombuffer(b"".join(codes), np.uint8).reshape(len(ids), -1))
                    for ids, _, codes, _ in self.storage.iter_codes(after=after, upto=upto))
        raise ValueError(f"scan field {field!r} is not supported; use qvec or code")

    def select(self, namespace, where=None) -> np.ndarray:
        if where is not None:
            return np.array(sorted(self.storage.filter_ids(namespace, where)), dtype=np.int64)
        spaces = self.index.spaces.values() if namespace is None else [self.index.spaces.get(namespace)]
        out = [s.live_ids() for s in spaces if s is not None]
        return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)

    def sample(self, n):
        return self.storage.sample_qvecs(self._dim, n)

    def last_id(self) -> int:
        return self.storage.last_id()

    def count(self, namespace=None) -> int:
        return self.storage.count(namespace)

    def namespaces(self):
        return self.storage.namespaces()

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self.index.spaces

    def byte_sums(self):
        return self.storage.byte_sums()

    def body_store(self):
        return self.storage

    # -- term index (base.TermIndex) ------------------------------------------------------

    # -- lexicon -------------------------------------------------------------------------

    def load_lexicon(self) -> Lexicon:
        return self.storage.load_lexicon()

    def terms(self, ids):
        return self.storage.terms(ids)

    def save_lexicon(self, txn, lex, new_ids, touched) -> None:
        self.storage.save_lexicon(txn, lex, new_ids, touched)

    # -- stage 1 and the in-RAM index ---------------------------------------------------

    def candidates(self, namespace, qcode, n, *, generation, allowed_ids=None, query_proj=None, query_vec=None):
        """The index's top-n, with the candidates' codes from the index (stage 2 reads them)."""
        space = self.index.spaces.get(namespace)
        if space is None or self._hasher is None or generation != self._hasher.generation:
            return Candidates(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32))
        ids, ham = self.index.search(namespace, qcode, n, allowed_ids=allowed_ids, query_proj=query_proj,
                                     query_vec=query_vec)
        return Candidates(ids, ham, codes=space.codes_of(ids))

    def candidates_many(self, namespace, qcodes, n, *, generation):
        """The index's top-n of every query in one kernel call (without their codes: nobody reads them)."""
        if self._hasher is None or generation != self._hasher.generation:
            return super().candidates_many(namespace, qcodes, n, generation=generation)  # none
        return [Candidates(ids, ham) for ids, ham in self.index.search_many(namespace, qcodes, n)]

    def follow(self, state) -> None:
        """Bring the index up to the file's commit ``state.versions["records"]``: other processes' adds,
        deletes and refits.

        New rows are appended (ids only grow), deleted ones dropped, and a new hasher (a
        refit, here or elsewhere) reloads the whole index.
        """
        if self.storage.closed:
            return
        version = state.versions.get("records")
        if self.index is None or state.hasher is not self._hasher:
            self._load(state, version)
            return
        if version == self._version:
            return
        deletes, rewrites = self.storage.deletes_count(), self.storage.rewrites.count()  # before what they count
        deleted_elsewhere, self._deletes = deletes != self._deletes, deletes
        last = self.storage.last_id()
        for ids, namespaces, codes, gens in self.storage.iter_codes(batch=8192, after=self._seen_id, upto=last):
            partitioned = {n for n in namespaces if (sp := self.index.spaces.get(n)) is not None and sp.is_ivf}
            if partitioned or np.any(gens != state.hasher.generation):
                # a partitioned namespace needs each row's list, and a row of another generation a
                # refit the state has not seen yet: reload (rare, large stores)
                self._load(state, version)
                return
            self.index.add_rows(ids, namespaces, codes)
        if deleted_elsewhere:  # drop the ids another process deleted (a scan of the ids: deletes are rare)
            for name, space in list(self.index.spaces.items()):
                if space.n_alive:
                    gone = np.setdiff1d(space.live_ids(), self.storage.live_ids(name, last), assume_unique=True)
                    if len(gone):
                        self.index.remove(name, gone.tolist())
        if rewrites != self._rewrites:  # records rewritten in place elsewhere: their codes again
            for ns, (ids, codes) in self.storage.rewritten_since(self._rewrites, state.hasher.generation).items():
                self.index.overwrite(ns, ids, codes)
            self._rewrites = rewrites
        self._seen_id = max(self._seen_id, last)
        self._version = version

    def _load(self, state, version) -> None:
        """Build the in-RAM index from every stored code (and note the last id seen)."""
        # built aside and swapped in whole: a search in another thread meanwhile sees the old index,
        # never a half-filled one without some namespace (which the servers would answer with a 404)
        fresh = HammingIndex(state.config.bits, ivf_min_rows=None)  # IVF lists: partition
        counts = self.storage.deletes_count(), self.storage.rewrites.count()  # before the codes they count
        seen = self.storage.last_id()
        mixed = False
        for ids, namespaces, codes, gens in self.storage.iter_codes(batch=8192, upto=seen):
            mixed = mixed or bool(np.any(gens != state.hasher.generation))
            fresh.add_rows(ids, namespaces, codes)
        self.index, self._hasher, self._seen_id = fresh, state.hasher, seen
        self._deletes, self._rewrites = counts
        self._version = None if mixed else version  # codes of a refit the state lags behind: look again
        partition.load(self._partition(state.config.dim, state.quantizer))  # large namespaces' IVF lists

    # -- AfterCommitUpkeep: the index and the IVF lists of large namespaces -------------------

    def _partition(self, dim: int, quantizer) -> partition.Target:
        return partition.Target(self.storage, self.index, dim, quantizer)

    def ivf_lists(self, namespace, vectors, *, dim, quantizer):
        return partition.lists_for(self._partition(dim, quantizer), namespace, vectors)

    def store_ivf_lists(self, txn, ids, lists) -> None:
        self.storage.set_lists(txn, ids, lists)

    def index_add(self, namespace, ids, codes, lists=None) -> None:
        self.index.add(namespace, ids, codes, lists)
        self._seen_id = max(self._seen_id, ids[-1])

    def index_remove(self, namespace, ids) -> None:
        self.index.remove(namespace, ids)

    def index_rewrite(self, namespace, ids, codes) -> None:
        self.index.overwrite(namespace, ids, codes)

    def upkeep(self, namespace, *, dim, quantizer, progress=False) -> None:
        partition.maybe_build(self._partition(dim, quantizer), namespace, progress=progress)

    # -- ApiKeys and FileStatistics ------------------------------------------------------

    def put_key(self, name, digest, grants) -> None:
        self.storage.put_key(name, digest, grants)

    def keys(self, *, digest=None):
        return self.storage.keys(digest=digest)

    def revoke_key(self, name) -> bool:
        return self.storage.revoke_key(name)

    def file_bytes(self) -> int:
        return self.storage.file_bytes()

    def file_parts(self):
        return self.storage.file_parts()

    def partitions(self) -> dict[str, dict]:
        return {ns: {"nlist": sp.nlist, "lists_from": "vectors" if sp.vectors is not None else "codes",
                     "fitted_on": sp.fitted_on}
                for ns, sp in self.index.spaces.items() if sp.is_ivf}
