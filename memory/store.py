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
handle up to date (lexicon, quantizer, hasher, index) with what other processes
committed, and each search does the same, so it sees every earlier commit.

What it does not do: read files (``sources``), chunk (``chunk``) or decode text
(``decoders``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from . import hashing, hints, ingest, quantize, search
from . import refit as refitting
from .backends import open_backend
from .backends.base import Backend
from .backends.local.storage import Storage
from .chunk import DEFAULT_PASSAGE_TOKENS, chunk_text
from .config import MAX_K, StoreConfig, validate_settings
from .embedding.embedder import Embedder, same_model
from .errors import (
    ConfigError,
    InputError,
    ModelMismatchError,
    RecordNotFoundError,
    StoreCorruptError,
    StoreError,
)
from .filters import Where
from .results import Hit, Record, StoreStats
from .rwlock import RWLock
from .search import SearchMode
from .validate import check_embeddings, check_id, check_metadata, check_str, check_text

_DEFAULT_ALIASES = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}


def _canonical_model(name: str) -> str:
    return _DEFAULT_ALIASES.get(name, name)


class Memory:
    """A hashmem store in one SQLite file.

    Args:
        path: the store file; created if missing (when ``create``).
        model: embedding model (sentence-transformers name or path). Fixed at
            creation; opening with another one raises ModelMismatchError.
        bits: code length, a multiple of 8 in [32, dim] (fixed at creation).
        method: ``sign``, ``itq`` or ``lsh`` (fixed at creation).
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

    Several processes may share one store: writes serialize on SQLite's write lock
    (waiting up to ``storage.BUSY_TIMEOUT`` seconds), and every search first brings
    this handle up to date with what other processes committed (adds, deletes,
    refits), so it sees every commit made before it started.

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
        self._state = RWLock()
        self._llm_tier = None
        self.backend: Backend = open_backend(path, create=create and not readonly, readonly=readonly,
                                             durable=durable)
        self.path = self.backend.path if self.backend.local else self.backend.location
        new = self.backend.is_new
        try:
            if new and readonly and self.backend.local:  # a zero-byte file or none: Storage says "no store"
                raise StoreCorruptError(f"{self.path} is an SQLite database with no tables, not a hashmem store "
                                        "(an empty database, or a creation killed before its commit); create a "
                                        "store there with `hashmem init` or Memory(path)")
            if new and self._create(model, bits, method, hint_bytes, fidelity):
                pass
            else:
                new = False  # another process created it first: open theirs, never delete it
                self._open(model, bits, method, hint_bytes, fidelity)
            if check:
                self.backend.check(bits=self.config.bits, dim=self.config.dim, generation=self.hasher.generation)
            self._lexicon: hints.Lexicon | None = None  # loaded on the first add
            self.backend.start(self)
        except BaseException:  # a handle that cannot write created nothing: it must not delete the file
            self.backend.discard_failed_creation(new and not self.backend.readonly)
            raise

    @property
    def storage(self) -> Storage:
        """The SQLite file of a local store (``LocalBackend``); a remote backend has none."""
        if not self.backend.local:
            raise ConfigError(f"{self.path} is not a local store: this needs a local SQLite store")
        return self.backend.storage

    @property
    def index(self):
        """The in-RAM Hamming index of a local store (``LocalBackend``)."""
        if not self.backend.local:
            raise ConfigError(f"{self.path} is not a local store: this needs a local SQLite store")
        return self.backend.index

    # -- opening -----------------------------------------------------------------------

    def _create(self, model, bits, method, hint_bytes, fidelity) -> bool:
        """Create the store in one transaction; False if another process created it meanwhile."""
        if self.backend.readonly:
            raise StoreError(f"cannot create a store at {self.path}: read-only")
        name = _canonical_model(model or StoreConfig.model)
        self.embedder = Embedder(name)
        dim = self.embedder.dim
        method = method or StoreConfig.method
        if bits is None:
            bits = dim if method == "sign" else min(StoreConfig.bits, dim)
        config = StoreConfig(
            model=name,
            dim=dim,
            bits=bits,
            method=method,
            hint_bytes=StoreConfig.hint_bytes if hint_bytes is None else hint_bytes,
            fidelity=fidelity or "hints",
            fingerprint=self.embedder.fingerprint(),
        )
        hasher = hashing.initial_hasher(method, dim=dim, bits=bits)
        raw = hasher.to_bytes(compress=refitting.compressed_hasher(self))
        extra = {"hasher": raw}
        if config.fidelity == "llm":  # the coder's model and parameters, fixed from now on
            from .tiers.llm import META_KEY

            extra[META_KEY] = self._llm().describe()
        if not self.backend.initialize(config, extra):  # one transaction: a kill leaves no half store
            return False
        self.config, self.hasher, self.quantizer = config, hasher, None
        self._hasher_raw = raw
        self._verified = True  # the fingerprint was just taken from this embedder
        return True

    def _open(self, model, bits, method, hint_bytes, fidelity) -> None:
        config = self.backend.load_config()
        if model is not None and _canonical_model(model) != config.model:
            raise ModelMismatchError(
                f"{self.path} was built with model {config.model!r}, not {model!r}; open it "
                f"without a model (or with {config.model!r}), or use a new store"
            )
        for name, asked, have in (
            ("bits", bits, config.bits),
            ("method", method, config.method),
            ("hint_bytes", hint_bytes, config.hint_bytes),
            ("fidelity", fidelity, config.fidelity),
        ):
            if asked is not None and asked != have:
                raise ConfigError(
                    f"{self.path} has {name}={have!r}, fixed at creation; you asked for {asked!r}. "
                    "Open it without that setting, or create a new store"
                )
        raw = self.backend.get_meta("hasher")
        if raw is None:
            raw = self._finish_creation(config)
        self._hasher_raw = bytes(raw)
        self.hasher = hashing.Hasher.from_bytes(raw)
        q = self.backend.get_meta("quantizer")
        self.quantizer = quantize.Quantizer.from_bytes(q) if q is not None else None
        self.config = config
        self.embedder = Embedder(config.model)
        self._verified = False

    def _finish_creation(self, config: StoreConfig) -> bytes:
        """A store whose creation was killed (by a version that took two transactions) before its
        hashing parameters were written: finish it when it holds no records, else refuse."""
        if self.backend.readonly or self.backend.count():
            raise StoreCorruptError(f"{self.path} has no hashing parameters")
        raw = hashing.initial_hasher(config.method, dim=config.dim, bits=config.bits).to_bytes()
        with self.backend.transaction() as c:
            current = self.backend.get_meta("hasher")  # another process may have finished it first
            if current is not None:
                return bytes(current)
            self.backend.set_meta(c, "hasher", raw)
        return raw

    def _load_index(self) -> None:
        """Rebuild what the Hamming stage keeps in RAM (the local index; nothing on a remote engine)."""
        self.backend.load_index(self)

    def _refresh(self) -> None:
        """Bring this handle up to the backend's latest state: other processes' adds, deletes and refits.

        Called before each search and inside each write transaction (``Backend.sync``). A
        catch-up that changes anything runs alone among this handle's threads: a search in
        another thread never sees a new hasher beside the old index.
        """
        if not self.backend.stale():
            return
        with self._state.write():
            self.backend.sync(self)

    @property
    def lexicon(self) -> hints.Lexicon:
        """The store's whole lexicon (loaded on first use: adding needs it, searching does not)."""
        if self._lexicon is None:
            self._lexicon = self.backend.load_lexicon()
        return self._lexicon

    def _hint_strings(self, blobs: Sequence[bytes]) -> list[list[str]]:
        """Decode hint blobs, looking up only the terms they use unless the lexicon is loaded."""
        lexicon = self._lexicon  # once: a catch-up in another thread may drop it meanwhile
        if lexicon is not None:
            return [hints.decode(b, lexicon) for b in blobs]
        terms = self.backend.terms([i for b in blobs for i in hints.term_ids(b)])
        return [hints.decode(b, terms) for b in blobs]

    def _verify_model(self) -> None:
        """Check, once, that the loaded embedder behaves like the one the store was built with."""
        if self._verified:
            return
        current = self.embedder.fingerprint()
        stored = self.config.fingerprint
        if stored and not same_model(stored, current):
            raise ModelMismatchError(
                f"{self.path} was built with model {stored.get('name')!r} (dim {stored.get('dim')}, "
                f"probe {stored.get('probe_sha')}); the model loaded as {self.config.model!r} gives "
                f"dim {current['dim']}, probe {current['probe_sha']}: it is another model"
            )
        self._verified = True

    def _embed(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray:
        self._verify_model()
        return self.embedder.encode(texts, progress=progress)

    # -- context manager -----------------------------------------------------------------

    def close(self) -> None:
        """Checkpoint the WAL and close the file (a second call does nothing)."""
        if self.backend.closed:
            return
        try:
            self.backend.checkpoint()
        finally:
            self.backend.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        self._refresh()
        with self._state.read():
            return self.backend.n_records()

    # -- adding ------------------------------------------------------------------------

    def add(
        self,
        texts: Sequence[str],
        *,
        metadata: Sequence[dict] | dict | None = None,
        namespace: str = "default",
        embeddings: np.ndarray | None = None,
        progress: bool | None = None,
    ) -> list[int]:
        """Store passages; returns their new ids in order.

        Args:
            texts: the passages (non-empty strings, no NUL characters).
            metadata: one dict for all, or one dict per text (JSON-serializable).
            namespace: the partition to store them in.
            embeddings: optional float32 [len(texts), dim] embeddings *made with the
                store's model* (skips embedding; they are normalized here).
            progress: show a progress bar on stderr (default: for large inputs).

        Raises:
            InputError: empty or invalid texts or metadata; nothing is written.
        """
        if isinstance(texts, str):
            raise InputError("add() takes a list of texts; wrap a single text in a list")
        texts = list(texts)
        metas = _normalize_metadata(metadata, len(texts))
        for i, t in enumerate(texts):
            check_text(t, f"text {i}")
        if embeddings is not None:
            embeddings = check_embeddings(embeddings, len(texts), self.config.dim)
        return self.add_passages(zip(texts, metas, strict=True), namespace=namespace, total=len(texts),
                                 embeddings=embeddings, progress=progress)

    def add_documents(
        self,
        documents: Sequence[str],
        *,
        metadata: Sequence[dict] | dict | None = None,
        namespace: str = "default",
        passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
        progress: bool | None = None,
    ) -> list[int]:
        """Chunk documents into passages of about ``passage_tokens`` tokens and store them.

        Each passage's metadata is its document's metadata plus ``doc`` (the
        document's position in ``documents``, unless metadata already has a
        ``source``), ``start`` and ``end`` (character offsets in the document).

        Returns:
            Ids of all passages, in document order.
        """
        if isinstance(documents, str):
            raise InputError("add_documents() takes a list of documents; wrap a single one in a list")
        documents = list(documents)
        metas = _normalize_metadata(metadata, len(documents))
        rows = []
        for d, (doc, meta) in enumerate(zip(documents, metas, strict=True)):
            check_text(doc, f"document {d}")
            for p in chunk_text(doc, tokens=passage_tokens):
                extra = {"start": p.start, "end": p.end}
                if "source" not in meta:
                    extra["doc"] = d
                rows.append((p.text, {**meta, **extra}))
        return self.add_passages(rows, namespace=namespace, total=len(rows), progress=progress)

    def add_passages(
        self,
        passages: Iterable[tuple[str, dict]],
        *,
        namespace: str = "default",
        total: int | None = None,
        embeddings: np.ndarray | None = None,
        progress: bool | None = None,
    ) -> list[int]:
        """Store a stream of (text, metadata) pairs lazily, one transaction per batch; returns the ids.

        Texts are checked as they come (see ``ingest.add_passages``): a caller that needs
        all-or-nothing validates up front, as ``add`` does.
        """
        return ingest.add_passages(self, passages, namespace=namespace, total=total, embeddings=embeddings,
                                   progress=progress)

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

    # -- refitting ---------------------------------------------------------------------

    def refit(self, *, progress: bool = False) -> None:
        """Refit the hasher on the stored int8 vectors and re-encode every code (see ``refit.refit``).

        Args:
            progress: a progress bar on stderr while codes are re-encoded.
        """
        refitting.refit(self, progress=progress)

    # -- searching ---------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        namespace: str = "default",
        where: dict | None = None,
        candidates: int | None = None,
        mode: SearchMode = "binary+int8",
    ) -> list[Hit]:
        """The k passages nearest to a query, best first.

        Args:
            query: the query text.
            k: number of hits (> 0).
            namespace: only this namespace is searched (unknown → no hits).
            where: metadata equality filter, e.g. ``{"source": "a.txt"}``.
            candidates: passages reranked with int8 vectors (default 100); the
                Hamming stage keeps 4× as many for the asymmetric stage.
            mode: ``binary+int8`` (default), ``binary`` (Hamming only) or
                ``int8`` (exhaustive int8 cosine: slow, exact up to quantization).

        Returns:
            Hits sorted by score (ties by id).
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty; give some text to search for")
        check_str(query, "the query")
        _check_k(k)
        return self.search_embeddings(self._embed([query]), k, namespace=namespace, where=where,
                                      candidates=candidates, mode=mode)[0]

    def search_embeddings(
        self,
        queries: np.ndarray,
        k: int = 10,
        *,
        namespace: str = "default",
        where: dict | None = None,
        candidates: int | None = None,
        mode: SearchMode = "binary+int8",
    ) -> list[list[Hit]]:
        """Like ``search`` for query embeddings float32 [m, dim] made with the store's model."""
        _check_k(k)
        if candidates is not None:
            _check_k(candidates, "candidates")
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.ndim != 2 or queries.shape[1] != self.config.dim:
            raise InputError(f"query embeddings must have {self.config.dim} columns, got shape {queries.shape}")
        if not np.isfinite(queries).all():
            raise InputError("query embeddings hold NaN or infinite values")
        checked = None if where is None else Where.parse(where, self.backend.where_dialect)  # before any backend call
        if mode not in search.MODES:
            raise ConfigError(f"search mode {mode!r} is not supported; use binary+int8, binary or int8")
        self._refresh()  # see every commit made before this search, by any process
        with self._state.read():  # one hasher and one index throughout, whatever other threads do
            return self._search(queries, k, namespace, checked, candidates, mode)

    def _search(self, queries, k, namespace, where, candidates, mode) -> list[list[Hit]]:
        allowed = None
        if where:  # a Where; an empty one filters nothing
            allowed = self.backend.filter_ids(namespace, where)
            if not allowed:
                return [[] for _ in queries]
        ranked = search.rank(self.backend, self.hasher, self.quantizer, queries, k, namespace=namespace,
                             candidates=candidates, mode=mode, allowed=allowed)
        return [self._hits(r.ids, r.scores, r.hamming) for r in ranked]

    def _hits(self, ids, scores, ham) -> list[Hit]:
        rows = self.backend.fetch(ids.tolist())
        keep = np.array([int(i) in rows for i in ids], dtype=bool)  # deleted by another process just now
        ids, scores, ham = np.asarray(ids)[keep], np.asarray(scores)[keep], np.asarray(ham)[keep]
        strings = self._hint_strings([rows[int(i)].hints for i in ids])
        return [
            Hit(
                id=int(i),
                score=float(s),
                hamming=int(h),
                hints=words,
                metadata=rows[int(i)].metadata,
                namespace=rows[int(i)].namespace,
            )
            for i, s, h, words in zip(ids, scores, ham, strings, strict=True)
        ]

    # -- records -----------------------------------------------------------------------

    def get(self, id: int) -> Record:
        """The record with this id.

        Raises:
            InputError: the id is not an integer (int or numpy integer) in 1 … 2**63 - 1.
            RecordNotFoundError: no such id.
        """
        id = check_id(id)
        # no lock: neither the hasher nor the index is read, and a text body (an llm one decodes for a
        # second) is decoded without keeping writers, and the readers queued behind them, waiting
        rows = self.backend.fetch([id])
        if id not in rows:
            raise RecordNotFoundError(f"no record with id {id} in {self.path}")
        r = rows[int(id)]
        text = None
        strings = self._hint_strings([r.hints])[0]
        if self.config.fidelity in ("text", "llm"):
            text = self._read_text(r.id, strings)
            if text is None and id not in self.backend.fetch([id]):  # deleted between the two reads
                raise RecordNotFoundError(f"no record with id {id} in {self.path}")
        return Record(
            id=r.id,
            namespace=r.namespace,
            created=r.created,
            metadata=r.metadata,
            hints=strings,
            code=np.frombuffer(r.code, dtype=np.uint8).copy(),
            qvec=np.frombuffer(r.qvec, dtype=np.int8).copy(),
            text=text,
        )

    def _read_text(self, id: int, hint_strings: Sequence[str]) -> str | None:
        """The exact text of a record (None: it has no body, or was deleted meanwhile).

        A body read just before another process's dictionary re-training committed names a
        dictionary that is gone by the time it is decoded: the body is read again (it was
        recompressed in the same transaction that dropped the dictionary).
        """
        from .tiers.text import DictionaryGoneError

        for attempt in range(3):
            body = self.backend.fetch_texts([id]).get(id)
            if body is None:
                return None
            try:
                return self._decode_text(body, hint_strings)
            except DictionaryGoneError:
                if attempt == 2:  # a third miss is a real loss
                    raise
        return None

    def _decode_text(self, body: bytes, hint_strings: Sequence[str] = ()) -> str:
        from .tiers import text as texttier

        if body[:1] == bytes([texttier.LLM_TAG]):
            return self._llm().decode(body, hint_strings)
        return self._text_tier().decode(body)

    def ids(self, namespace: str | None = None) -> list[int]:
        """All record ids (of one namespace, or all), ascending."""
        self._refresh()
        with self._state.read():
            return self.backend.live_ids(namespace).tolist()

    def delete(self, ids: Iterable[int]) -> int:
        """Delete records by id in one transaction; returns how many existed (a repeated id counts once).

        Raises:
            InputError: an id is not an integer (int or numpy integer) in 1 … 2**63 - 1; nothing is deleted.
        """
        if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
            raise InputError("delete() takes an iterable of ids; wrap a single id in a list")
        ids = list(dict.fromkeys(check_id(i) for i in ids))
        with self._state.write():
            with self.backend.transaction() as c:
                self._refresh()
                gone = self.backend.delete(c, ids)
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
        with self._state.read():
            if self.backend.has_namespace(namespace):
                return True
        self._refresh()
        with self._state.read():
            return self.backend.has_namespace(namespace)

    def namespaces(self) -> dict[str, int]:
        """Passage count per namespace."""
        with self._state.read():
            return self.backend.namespaces()

    def stats(self) -> StoreStats:
        """Counts, bytes per passage by part, and the file's bytes by part (``file_parts``)."""
        with self._state.read():
            return self._stats()

    def _stats(self) -> StoreStats:
        sums = self.backend.byte_sums()
        n = sums.pop("records")
        file_bytes = self.backend.file_bytes()
        per = {k: (v / n if n else 0.0) for k, v in sums.items()}
        per["file"] = file_bytes / n if n else 0.0
        return StoreStats(
            records=n,
            namespaces=self.backend.namespaces(),
            config={k: v for k, v in vars(self.config).items() if k != "fingerprint"},
            bytes_per_passage=per,
            file_bytes=file_bytes,
            hasher={"method": self.hasher.method, "generation": self.hasher.generation,
                    "fitted_on": self.hasher.fitted_on},
            ivf={ns: {"nlist": sp.nlist, "lists_from": "vectors" if sp.vectors is not None else "codes",
                      "fitted_on": sp.fitted_on}
                 for ns, sp in (self.index.spaces.items() if self.backend.local else ()) if sp.is_ivf},
            file_parts=self.backend.file_parts(),
        )

    # -- API keys (for the servers' tenants; see memory.keys) --------------------------------

    def add_key(self, name: str, grants: dict[str, str]) -> str:
        """Make an API key granting namespaces; returns its token (shown once, stored only hashed).

        Args:
            name: unique name of the key.
            grants: namespace → ``read`` or ``write`` (``write`` includes reading).

        Raises:
            ConfigError: a bad name or grants, or a key with this name exists.
        """
        from . import keys

        token = keys.new_token()
        self.backend.put_key(keys.check_name(name), keys.digest(token), keys.check_grants(grants))
        return token

    def keys(self) -> list:
        """Every API key (valid and revoked), oldest first, as ``memory.keys.ApiKey``."""
        from .keys import ApiKey

        return [ApiKey(n, g, c, r, d) for n, d, g, c, r in self.backend.keys()]

    def key_for(self, token: str):
        """The ``ApiKey`` whose token this is (revoked or not), or None."""
        from .keys import ApiKey, digest

        rows = self.backend.keys(digest=digest(token)) if isinstance(token, str) and token else []
        if not rows:
            return None
        name, dig, grants, created, revoked = rows[0]
        return ApiKey(name, grants, created, revoked, dig)

    def revoke_key(self, name: str) -> None:
        """Revoke an API key by name (it stays listed, marked revoked).

        Raises:
            RecordNotFoundError: no valid key has this name.
        """
        if not self.backend.revoke_key(name):
            raise RecordNotFoundError(f"no valid key named {name!r} in {self.path}")

    def find_ids(self, where: dict, *, namespace: str = "default") -> list[int]:
        """Ids of the records of a namespace whose metadata equals every key/value of ``where``, ascending.

        Raises:
            ConfigError: a key or value ``where`` cannot hold (see ``search``).
        """
        return sorted(self.backend.filter_ids(namespace, Where.parse(where, self.backend.where_dialect, empty=False)))


# -- helpers -------------------------------------------------------------------------------


def _check_k(k, what: str = "k") -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ConfigError(f"{what} must be a positive integer, got {k!r}")
    if k > MAX_K:
        raise ConfigError(f"{what} must be at most {MAX_K:,}, got {k:,}; page through results instead")


def _normalize_metadata(metadata, n: int) -> list[dict]:

    if metadata is None:
        return [{} for _ in range(n)]
    if isinstance(metadata, dict):
        metas = [dict(metadata) for _ in range(n)]
    elif isinstance(metadata, str | bytes) or not isinstance(metadata, Iterable):
        raise InputError(f"metadata must be a dict or a list of dicts, got {type(metadata).__name__}")
    else:
        metas = list(metadata)
        if len(metas) != n:
            raise InputError(f"got {len(metas)} metadata dicts for {n} texts; give one per text or one for all")
    for i, m in enumerate(metas):
        check_metadata(m, f"metadata {i}")
    return metas

