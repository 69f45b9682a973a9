"""Memory: add, search, get, delete, stats — composes embed, hashing, quantize, hints, index, storage.

Search runs in three stages over one namespace:

1. Hamming top ``4 × candidates`` over the in-memory codes (``index``);
2. asymmetric top ``candidates``: the float query's projections ``(q - mean) @ P``
   dotted with the candidates' ±1 codes (cheap, and close to the int8 ranking);
3. int8 rerank: cosine of the float query with the candidates' dequantized
   int8 vectors, read from SQLite; top ``k``.

Learned codes without keeping floats: codes are always computed from the
*dequantized int8 vectors*, so the store can refit its hasher at any time from
what it keeps. The hasher is (re)fitted when the store reaches 1,024 passages
and again each time it has grown 4× since the last fit (4,096, 16,384, …,
262,144), on a sample of at most 16,384 stored vectors; every code is then
re-encoded (outside the write lock) and written in one short transaction that
also stores the new hasher, tagged with the hasher's generation. Codes of
different generations are never compared: the integrity check refuses a store
that holds two.

Several processes may share a store: each write transaction first brings the
handle up to date (``state.SharedState``: lexicon, quantizer, hasher; and the
backend's index) with what other processes committed, and each search does the
same, so it sees every earlier commit.

This module opens and creates stores and checks what comes in; the write pipeline
is ``ingest``, refitting ``refit``, the search stages ``search``, rows made into hits
and records ``records``, statistics ``stats``, API keys ``keys``, the byte budget ``compact``.

What it does not do: read files (``sources``), chunk (``chunk``) or decode text
(``decoders``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from . import access, fusion, hints, ingest, keys, opening, recall, records, search
from . import compact as compacting
from . import refit as refitting
from . import stats as statistics
from .backends import open_backend
from .backends.base import AfterCommitUpkeep, Backend
from .config import validate_settings
from .errors import ConfigError, InputError
from .filters import Where
from .results import Hit, Record, StoreStats
from .rwlock import RWLock
from .search import SearchMode
from .validate import (
    check_id,
    check_k,
    check_queries,
    check_str,
)


class Memory(ingest.Adding, keys.KeyMethods, compacting.Compacting, recall.Recalling):
    """A hashmem store in one SQLite file.

    Args:
        path: the store file; created if missing (when ``create``).
        model: embedding model (sentence-transformers name or path). Fixed at
            creation; opening with another one raises ModelMismatchError.
        bits, method: code length, a multiple of 8 in [32, dim]; ``sign``, ``itq`` or ``lsh`` (fixed at creation).
        hint_bytes: byte budget of the lexical hints per passage (fixed at creation).
        create: create the store when the file does not exist; otherwise raise StoreError.
        batch_size: passages embedded and committed per transaction.
        check: run the integrity check on open.
        readonly: open for reading only (search, get, stats): nothing in the file
            changes, and a store on a read-only filesystem can be searched.
        durable: sync every commit to disk (SQLite ``synchronous=FULL``) so that a power
            loss keeps it; by default (``NORMAL``) a power loss may drop the last commits.
        token_model: for an ``llm``-fidelity store, the ``llmtier.TokenModel`` (or a
            factory of one) its passages are coded with; default: the one
            ``hashmem.decoders`` registers (the decoder's GGUF through llama.cpp).

    Several processes may share one store: writes serialize on SQLite's write lock (waiting
    up to ``storage.BUSY_TIMEOUT`` s), and every search first catches up with what other
    processes committed (adds, deletes, refits), so it sees every commit made before it.

    Raises:
        ConfigError: invalid settings, or settings different from the store's.
        ModelMismatchError: the store was built with another model.
        StoreError / StoreCorruptError: the file cannot be used.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        model: str | None = None,
        bits: int | None = None,
        method: str | None = None,
        hint_bytes: int | None = None,
        fidelity: str | None = None,
        create: bool = True,
        batch_size: int = 256,
        check: bool = True,
        readonly: bool = False,
        durable: bool = False,
        token_model=None,
    ) -> None:
        validate_settings(bits=bits, method=method, hint_bytes=hint_bytes, fidelity=fidelity)
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self._token_model = token_model
        # threads sharing this handle: searches and reads at once, a catch-up with other processes' commits
        # (which swaps hasher and index together) or a write alone
        self._lock = RWLock()
        self._llm_tier = None
        self.backend: Backend = open_backend(path, create=create and not readonly, readonly=readonly,
                                             durable=durable)
        self.path = getattr(self.backend, "path", self.backend.location)
        self._access = access.AccessLog(self.backend)  # last reads of exact bodies (a byte budget's order)
        new = self.backend.is_new
        try:
            settings = {"model": model, "bits": bits, "method": method, "hint_bytes": hint_bytes, "fidelity": fidelity}
            if not (new and opening.create(self, **settings)):
                new = False  # another process created it first: open theirs, never delete it
                opening.open_existing(self, **settings)
            if check:
                self.backend.check(bits=self.config.bits, dim=self.config.dim, generation=self.hasher.generation)
            self._refresh(force=True)  # the change feed's first versions; the local index is built
        except BaseException:  # a handle that cannot write created nothing: it must not delete the file
            self.backend.discard_failed_creation(new and not self.backend.readonly)
            raise

    config = property(lambda self: self.state.config, doc="The store's ``StoreConfig`` (fixed at creation).")
    hasher = property(lambda self: self.state.hasher, doc="The current ``hashing.Hasher``.")
    quantizer = property(lambda self: self.state.quantizer, doc="The int8 calibration (None before the first add).")

    @property
    def storage(self):
        """The SQLite file (``Storage``) of a local store; a remote backend has none."""
        if not hasattr(self.backend, "storage"):
            raise ConfigError(f"{self.path} is not a local store: this needs a local SQLite store")
        return self.backend.storage

    @property
    def index(self):
        """The in-RAM Hamming index of a local store."""
        if not isinstance(self.backend, AfterCommitUpkeep):
            raise ConfigError(f"{self.path} is not a local store: this needs a local SQLite store")
        return self.backend.index

    def _refresh(self, *, force: bool = False) -> None:
        """Bring this handle up to the backend's latest state: other processes' adds, deletes and refits.

        Called before each search and inside each write transaction; ``state.follow`` applies the
        change feed, then the backend's own index follows the state. A catch-up that changes
        anything runs alone among this handle's threads: a search in another thread never sees
        a new hasher beside the old index.
        """
        if not (force or self.backend.stale()):
            return
        with self._lock.write():
            self.state.follow(self.backend)
            self.backend.follow(self.state)

    @property
    def lexicon(self) -> hints.Lexicon:
        """The store's whole lexicon (loaded on first use: adding needs it, searching does not)."""
        if self.state.lexicon is None:
            self.state.lexicon = self.backend.load_lexicon()
        return self.state.lexicon

    def _verify_model(self) -> None:
        """Check, once, that the loaded embedder behaves like the one the store was built with."""
        if not self._verified:
            opening.verify_model(self)
            self._verified = True

    def _embed(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray:
        self._verify_model()
        return self.embedder.encode(texts, progress=progress)

    def _text_tier(self):
        """The store's text tier (zstd bodies with the store's dictionary)."""
        from .tiers import text as texttier

        return texttier.for_storage(self.backend.body_store())

    def _llm(self):
        """The store's llm tier (its model loads on first use)."""
        if self._llm_tier is None:
            from .tiers.llm import LlmTier

            self._llm_tier = LlmTier(self.backend.body_store(), self._token_model)
        return self._llm_tier

    def close(self) -> None:
        """Write the pending last-access times, flush (the local WAL) and close (a second call does nothing)."""
        self._access.flush()  # never raises: times it cannot write go with the handle
        self.backend.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        self._refresh()
        with self._lock.read():
            return self.backend.count()

    # -- refitting (refit.py) and searching (search.py) ------------------------------------

    def refit(self, *, progress: bool = False) -> None:
        """Refit the hasher on the stored int8 vectors and re-encode every code (see ``refit.refit``).

        Args:
            progress: a progress bar on stderr while codes are re-encoded.
        """
        refitting.refit(self, progress=progress)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        namespace: str = "default",
        where: dict | None = None,
        candidates: int | None = None,
        mode: SearchMode = search.DEFAULT_MODE,
        lexical_weight: float | None = None, recency_weight: float = 0.0,
    ) -> list[Hit]:
        """The k passages nearest to a query, best first (ties by id).

        Args:
            query: the query text.
            k: number of hits (> 0).
            namespace: only this namespace is searched (unknown → no hits).
            where: metadata equality filter, e.g. ``{"source": "a.txt"}``.
            candidates: passages reranked with int8 vectors (default 100; the Hamming stage keeps 4× as many).
            mode: ``hybrid`` (default: int8 cosine blended with BM25 of the hint terms, or of the exact
                words on a ``text`` store; scores in [0, 1]), ``binary+int8`` (vectors only), ``binary``
                or ``int8`` (exhaustive, slow).
            lexical_weight: BM25's share in ``hybrid`` (default ``fusion.DEFAULT_LEXICAL_WEIGHT``).
            recency_weight: newer passages' boost when scores tie closely (``recency``; 0: none).
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty; give some text to search for")
        check_str(query, "the query")
        check_k(k)
        return self.search_embeddings(self._embed([query]), k, namespace=namespace, where=where,
                                      candidates=candidates, mode=mode, lexical_weight=lexical_weight,
                                      query_texts=[query], recency_weight=recency_weight)[0]

    def search_embeddings(
        self,
        queries: np.ndarray,
        k: int = 10,
        *,
        namespace: str = "default",
        where: dict | None = None,
        candidates: int | None = None,
        mode: SearchMode | None = None,
        lexical_weight: float | None = None,
        query_texts: Sequence[str] | None = None, recency_weight: float = 0.0,
    ) -> list[list[Hit]]:
        """Like ``search`` for query embeddings float32 [m, dim]; ``hybrid`` (the default when given them) needs ``query_texts``."""
        mode = mode or (search.DEFAULT_MODE if query_texts is not None else "binary+int8")
        check_k(k)
        if candidates is not None:
            check_k(candidates, "candidates")
        queries = check_queries(queries, self.config.dim)
        checked = None if where is None else Where.parse(where, self.backend.where_dialect)  # before any backend call
        if mode not in search.MODES:
            raise ConfigError(f"search mode {mode!r} is not supported; use {', '.join(search.MODES)}")
        weight = fusion.check_hybrid(mode, lexical_weight, query_texts, len(queries), self.config.fidelity)
        self._refresh()  # see every commit made before this search, by any process
        with self._lock.read():  # one hasher and one index throughout, whatever other threads do
            allowed = None
            if checked:  # a Where; an empty one filters nothing
                allowed = self.backend.select(namespace, checked).tolist()
                if not allowed:
                    return [[] for _ in queries]
            hybrid = (fusion.hybrid_for(self, query_texts, weight, given=lexical_weight is not None)
                      if mode == "hybrid" else None)
            ranked = search.rank(self.backend, self.hasher, self.quantizer, queries, k, namespace=namespace,
                                 candidates=candidates, mode=mode, allowed=allowed, hybrid=hybrid,
                                 recency_weight=recency_weight)
            return [records.hits(self, r.ids, r.scores, r.hamming) for r in ranked]

    # -- records -----------------------------------------------------------------------

    def get(self, id: int) -> Record:
        """The record with this id (with its exact text on a ``text`` or ``llm`` store).

        Raises:
            InputError: the id is not an integer (int or numpy integer) in 1 … 2**63 - 1.
            RecordNotFoundError: no such id.
        """
        # no lock: no hasher or index is read, and a body (an llm one: a second) decodes without holding writers up
        return records.record(self, check_id(id))  # several at once, llm bodies decoded together: recall_many

    def ids(self, namespace: str | None = None) -> list[int]:
        """All record ids (of one namespace, or all), ascending."""
        self._refresh()
        with self._lock.read():
            return self.backend.select(namespace).tolist()

    def delete(self, ids: Iterable[int]) -> int:
        """Delete records by id in one transaction; returns how many existed (a repeated id counts once).

        Raises:
            InputError: an id is not an integer (int or numpy integer) in 1 … 2**63 - 1; nothing is deleted.
        """
        if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
            raise InputError("delete() takes an iterable of ids; wrap a single id in a list")
        ids = list(dict.fromkeys(check_id(i) for i in ids))
        with self._lock.write():
            with self.backend.transaction() as c:
                self._refresh()
                gone = self.backend.delete(c, ids)
            if isinstance(self.backend, AfterCommitUpkeep):
                by_ns: dict[str, list[int]] = {}
                for i, ns in gone:
                    by_ns.setdefault(ns, []).append(i)
                for ns, group in by_ns.items():
                    self.backend.index_remove(ns, group)
        return len(gone)

    def has_namespace(self, namespace: str) -> bool:
        """Whether a namespace has held passages (cheap: the local index's namespaces, or a count).

        A no is checked again after catching up with other processes' commits, so a namespace
        another process filled since this handle last looked is never reported missing.
        """
        with self._lock.read():
            if self.backend.has_namespace(namespace):
                return True
        self._refresh()
        with self._lock.read():
            return self.backend.has_namespace(namespace)

    def namespaces(self) -> dict[str, int]:
        """Passage count per namespace."""
        with self._lock.read():
            return self.backend.namespaces()

    def stats(self) -> StoreStats:
        """Counts, bytes per passage by part, and the file's bytes by part (``file_parts``)."""
        with self._lock.read():
            return statistics.stats(self)

    def find_ids(self, where: dict, *, namespace: str = "default") -> list[int]:
        """Ids of the records of a namespace whose metadata equals every key/value of ``where``, ascending.

        Raises:
            ConfigError: a key or value ``where`` cannot hold (see ``search``).
        """
        return self.backend.select(namespace, Where.parse(where, self.backend.where_dialect, empty=False)).tolist()
