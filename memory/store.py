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
262,144), on a sample of at most 65,536 stored vectors; every code is then
re-encoded in the same transaction that stores the new hasher, tagged with the
hasher's generation. Codes of different generations are never compared: the
integrity check refuses a store that holds two.

What it does not do: read files (``sources``), chunk (``chunk``) or decode text
(``decoders``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from . import hashing, hints, partition, quantize
from .chunk import DEFAULT_PASSAGE_TOKENS, chunk_text
from .config import DEFAULT_CANDIDATES, StoreConfig, validate_settings
from .embed import Embedder, same_model
from .errors import (
    ConfigError,
    InputError,
    ModelMismatchError,
    RecordNotFoundError,
    StoreCorruptError,
    StoreError,
)
from .index import HammingIndex
from .results import Hit, Record, StoreStats
from .storage import Storage

SearchMode = Literal["binary+int8", "binary", "int8"]
FIRST_FIT = 1024
REFIT_GROWTH = 4
LAST_REFIT = 262_144
FIT_SAMPLE = 65_536
ASYMMETRIC_FACTOR = 4
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
    ) -> None:
        validate_settings(bits=bits, method=method, hint_bytes=hint_bytes, fidelity=fidelity)
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.path = Path(path)
        self.batch_size = batch_size
        self.storage = Storage(self.path, create=create)
        new = self.storage.is_new
        try:
            if new:
                self._create(model, bits, method, hint_bytes, fidelity)
            else:
                self._open(model, bits, method, hint_bytes, fidelity)
            if check:
                self.storage.check(bits=self.config.bits, dim=self.config.dim, generation=self.hasher.generation)
            self._lexicon: hints.Lexicon | None = None  # loaded on the first add
            self.index = HammingIndex(self.config.bits, ivf_min_rows=None)  # IVF lists: memory.partition
            self._load_index()
        except BaseException:
            self.storage._close_quietly()
            if new:  # a store that failed to come into being leaves no file
                for suffix in ("", "-wal", "-shm"):
                    Path(str(self.path) + suffix).unlink(missing_ok=True)
            raise

    # -- opening -----------------------------------------------------------------------

    def _create(self, model, bits, method, hint_bytes, fidelity) -> None:
        if self.storage.readonly:
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
        self.storage.initialize(config)
        with self.storage.transaction() as c:
            self.storage.set_meta(c, "hasher", hasher.to_bytes())
        self.config, self.hasher, self.quantizer = config, hasher, None
        self._verified = True  # the fingerprint was just taken from this embedder

    def _open(self, model, bits, method, hint_bytes, fidelity) -> None:
        config = self.storage.load_config()
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
        raw = self.storage.get_meta("hasher")
        if raw is None:
            raise StoreCorruptError(f"{self.path} has no hashing parameters")
        self.hasher = hashing.Hasher.from_bytes(raw)
        q = self.storage.get_meta("quantizer")
        self.quantizer = quantize.Quantizer.from_bytes(q) if q is not None else None
        self.config = config
        self.embedder = Embedder(config.model)
        self._verified = False

    def _load_index(self) -> None:
        for ids, namespaces, codes, _ in self.storage.iter_codes(batch=8192):  # few Python objects at once
            arr = np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(ids), self.config.bits // 8)
            ns = np.array(namespaces, dtype=object)
            for name in dict.fromkeys(namespaces):
                sel = ns == name
                self.index.add(name, ids[sel], arr[sel])
        partition.load(self)  # large namespaces' IVF lists, stored (or fitted now, once)

    @property
    def lexicon(self) -> hints.Lexicon:
        """The store's whole lexicon (loaded on first use: adding needs it, searching does not)."""
        if self._lexicon is None:
            self._lexicon = self.storage.load_lexicon()
        return self._lexicon

    def _hint_strings(self, blobs: Sequence[bytes]) -> list[list[str]]:
        """Decode hint blobs, looking up only the terms they use unless the lexicon is loaded."""
        if self._lexicon is not None:
            return [hints.decode(b, self._lexicon) for b in blobs]
        terms = self.storage.terms([i for b in blobs for i in hints.term_ids(b)])
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
        if self.storage.closed:
            return
        try:
            self.storage.checkpoint()
        finally:
            self.storage.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.index)

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
            _check_text(t, f"text {i}")
        if embeddings is not None:
            embeddings = np.asarray(embeddings, dtype=np.float32)
            if embeddings.shape != (len(texts), self.config.dim):
                raise InputError(
                    f"embeddings must have shape ({len(texts)}, {self.config.dim}), got {embeddings.shape}"
                )
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
            _check_text(doc, f"document {d}")
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
        """Store a stream of (text, metadata) pairs, one transaction per batch.

        The stream is consumed lazily, so a huge input never sits in memory. A
        killed process keeps exactly the batches committed before it died.
        Texts are checked as they come; the caller validates up front when it
        needs all-or-nothing.
        """
        _check_namespace(namespace)
        show = (total or 0) >= 256 if progress is None else progress
        bar = _progress(total, show)
        ids: list[int] = []
        offset = 0
        try:
            for batch in _batched(passages, self.batch_size):
                texts = [t for t, _ in batch]
                for i, t in enumerate(texts):
                    _check_text(t, f"passage {offset + i}")
                metas = [m for _, m in batch]
                emb = embeddings[offset : offset + len(batch)] if embeddings is not None else None
                ids += self._add_batch(texts, metas, namespace, emb)
                offset += len(batch)
                if bar is not None:
                    bar.update(len(batch))
                self._maybe_refit()
                partition.maybe_build(self, namespace)
                if self.config.fidelity == "text":  # retrain the text tier's zstd dictionary when it pays
                    from .texttier import maybe_retrain

                    maybe_retrain(self.storage)
        finally:
            if bar is not None:
                bar.close()
        return ids

    def _add_batch(self, texts, metas, namespace, emb) -> list[int]:
        if emb is None:
            emb = self._embed(texts)
        else:
            self._verify_model()
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        quantizer = self.quantizer
        if quantizer is None:
            calib = self._embed(self.embedder.calibration_texts())
            quantizer = quantize.fit(np.concatenate([calib, emb]))
        qvecs = quantizer.encode(emb)
        deq = quantizer.decode(qvecs)
        codes = self.hasher.encode(deq)
        lists = partition.lists_for(self, namespace, deq)  # None unless the namespace has IVF lists
        toks = [hints.tokenize(t) for t in texts]
        term_sets = [hints.terms_of(t) for t in toks]
        new_ids = self.lexicon.observe(term_sets)
        touched = {self.lexicon.ids[t] for s in term_sets for t in s}
        hint_blobs = [hints.encode(t, self.lexicon, budget=self.config.hint_bytes) for t in toks]
        try:
            with self.storage.transaction() as c:
                if self.quantizer is None:
                    self.storage.set_meta(c, "quantizer", quantizer.to_bytes())
                self.storage.save_lexicon(c, self.lexicon, new_ids, touched)
                ids = self.storage.insert(
                    c,
                    namespace=namespace,
                    metadata=metas,
                    codes=codes,
                    qvecs=qvecs,
                    hints=hint_blobs,
                    gen=self.hasher.generation,
                    texts=self._texts_for_tier(texts),
                )
                if lists is not None:
                    self.storage.set_lists(c, ids, lists)
        except BaseException:
            self._lexicon = None  # undo the in-memory counts: reload on the next add
            raise
        self.quantizer = quantizer
        self.index.add(namespace, ids, codes, lists)
        return ids

    def _texts_for_tier(self, texts: Sequence[str]) -> list[bytes] | None:
        if self.config.fidelity != "text":
            return None
        from . import texttier

        return texttier.for_storage(self.storage).encode(texts)

    # -- refitting ---------------------------------------------------------------------

    def _refit_due(self, n: int) -> bool:
        fitted = self.hasher.fitted_on
        if fitted >= LAST_REFIT:
            return False
        return n >= (FIRST_FIT if fitted == 0 else fitted * REFIT_GROWTH)

    def _maybe_refit(self) -> None:
        n = self.storage.count()
        if self._refit_due(n):
            self.refit()

    def refit(self) -> None:
        """Refit the hasher on the stored int8 vectors and re-encode every code in one transaction."""
        n = self.storage.count()
        if n < 2 or self.quantizer is None:
            return
        sample = self.quantizer.decode(self.storage.sample_qvecs(self.config.dim, FIT_SAMPLE))
        if self.config.method == "itq" and len(sample) < self.config.bits:
            return
        new = hashing.fit(self.config.method, sample, bits=self.config.bits, previous=self.hasher)
        new = hashing.Hasher(new.method, new.bits, new.mean, new.projection, new.generation, fitted_on=n)
        with self.storage.transaction() as c:
            for ids, qvecs in self.storage.iter_qvecs(self.config.dim):
                self.storage.update_codes(c, ids, new.encode(self.quantizer.decode(qvecs)), new.generation)
            self.storage.set_meta(c, "hasher", new.to_bytes())
        self.hasher = new
        self.index = HammingIndex(self.config.bits, ivf_min_rows=None)
        self._load_index()

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
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.shape[1] != self.config.dim:
            raise InputError(f"query embeddings must have {self.config.dim} columns, got {queries.shape[1]}")
        c = DEFAULT_CANDIDATES if candidates is None else candidates
        if c < k:
            c = k
        if mode not in ("binary+int8", "binary", "int8"):
            raise ConfigError(f"search mode {mode!r} is not supported; use binary+int8, binary or int8")
        allowed = None
        if where:
            allowed = self.storage.filter_ids(namespace, where)
            if not allowed:
                return [[] for _ in queries]
        projs = self.hasher.project(queries)  # [q, bits]
        qcodes = np.packbits(projs > 0, axis=-1)  # = self.hasher.encode(queries)
        results = []
        for qi in range(len(queries)):
            if mode == "int8":
                ids, scores = self._exhaustive_int8(queries[qi], namespace, allowed, k)
                ham = self._hamming_of(qcodes[qi], ids)
            else:
                n_ham = k if mode == "binary" else c * ASYMMETRIC_FACTOR
                ids, ham = self.index.search(namespace, qcodes[qi], n_ham, allowed_ids=allowed, query_proj=projs[qi],
                                             query_vec=queries[qi])
                if mode == "binary":
                    scores = 1.0 - 2.0 * ham.astype(np.float32) / self.config.bits
                else:
                    ids, ham = self._asymmetric(projs[qi], ids, ham, namespace, c)
                    qv = self.storage.fetch_qvecs(ids.tolist(), self.config.dim)
                    scores = quantize.cosine(queries[qi : qi + 1], qv, self.quantizer)[0] if len(ids) else np.zeros(0)
                    order = np.lexsort((ids, -scores))[:k]
                    ids, ham, scores = ids[order], ham[order], scores[order]
            results.append(self._hits(ids, scores, ham))
        return results

    def _asymmetric(self, proj, ids, ham, namespace, c):
        if len(ids) <= c:
            return ids, ham
        space = self.index.spaces[namespace]
        codes = space.codes_of(ids)
        s = hashing.unpack_signs(codes, self.config.bits) @ proj  # [n_candidates]
        order = np.lexsort((ids, -s))[:c]
        return ids[order], ham[order]

    def _exhaustive_int8(self, q, namespace, allowed, k):
        best_ids, best_scores = np.empty(0, np.int64), np.empty(0, np.float32)
        space = self.index.spaces.get(namespace)
        if space is None:
            return best_ids, best_scores
        live = space.live_ids()
        if allowed is not None:
            live = np.intersect1d(live, np.asarray(allowed, dtype=np.int64))
        for s in range(0, len(live), 65536):
            chunk = live[s : s + 65536]
            qv = self.storage.fetch_qvecs(chunk.tolist(), self.config.dim)
            sc = quantize.cosine(q[None, :], qv, self.quantizer)[0]
            ids = np.concatenate([best_ids, chunk])
            scores = np.concatenate([best_scores, sc])
            order = np.lexsort((ids, -scores))[:k]
            best_ids, best_scores = ids[order], scores[order]
        return best_ids, best_scores

    def _hamming_of(self, qcode, ids):
        if len(ids) == 0:
            return np.zeros(0, np.uint32)
        rows = self.storage.fetch(ids.tolist())
        codes = np.stack([np.frombuffer(rows[int(i)].code, np.uint8) for i in ids])
        return hashing.hamming(qcode, codes)

    def _hits(self, ids, scores, ham) -> list[Hit]:
        rows = self.storage.fetch(ids.tolist())
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
            RecordNotFoundError: no such id.
        """
        rows = self.storage.fetch([int(id)])
        if int(id) not in rows:
            raise RecordNotFoundError(f"no record with id {id} in {self.path}")
        r = rows[int(id)]
        text = None
        if self.config.fidelity == "text":
            body = self.storage.fetch_texts([r.id]).get(r.id)
            text = None if body is None else self._decode_text(body)
        return Record(
            id=r.id,
            namespace=r.namespace,
            created=r.created,
            metadata=r.metadata,
            hints=self._hint_strings([r.hints])[0],
            code=np.frombuffer(r.code, dtype=np.uint8).copy(),
            qvec=np.frombuffer(r.qvec, dtype=np.int8).copy(),
            text=text,
        )

    def _decode_text(self, body: bytes) -> str:
        from . import texttier

        return texttier.for_storage(self.storage).decode(body)

    def ids(self, namespace: str | None = None) -> list[int]:
        """All record ids (of one namespace, or all), ascending."""
        spaces = self.index.spaces.values() if namespace is None else [self.index.spaces.get(namespace)]
        out = [s.live_ids() for s in spaces if s is not None]
        return sorted(np.concatenate(out).tolist()) if out else []

    def delete(self, ids: Iterable[int]) -> int:
        """Delete records by id in one transaction; returns how many existed."""
        ids = [int(i) for i in ids]
        with self.storage.transaction() as c:
            gone = self.storage.delete(c, ids)
        by_ns: dict[str, list[int]] = {}
        for i, ns in gone:
            by_ns.setdefault(ns, []).append(i)
        for ns, group in by_ns.items():
            self.index.remove(ns, group)
        return len(gone)

    def namespaces(self) -> dict[str, int]:
        """Passage count per namespace."""
        return self.storage.namespaces()

    def stats(self) -> StoreStats:
        """Counts and bytes per passage by part."""
        sums = self.storage.byte_sums()
        n = sums.pop("records")
        file_bytes = self.storage.file_bytes()
        per = {k: (v / n if n else 0.0) for k, v in sums.items()}
        per["file"] = file_bytes / n if n else 0.0
        return StoreStats(
            records=n,
            namespaces=self.storage.namespaces(),
            config={k: v for k, v in vars(self.config).items() if k != "fingerprint"},
            bytes_per_passage=per,
            file_bytes=file_bytes,
            hasher={"method": self.hasher.method, "generation": self.hasher.generation,
                    "fitted_on": self.hasher.fitted_on},
            ivf={ns: {"nlist": sp.nlist, "lists_from": "vectors" if sp.vectors is not None else "codes",
                      "fitted_on": sp.fitted_on}
                 for ns, sp in self.index.spaces.items() if sp.is_ivf},
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
        self.storage.put_key(keys.check_name(name), keys.digest(token), keys.check_grants(grants))
        return token

    def keys(self) -> list:
        """Every API key (valid and revoked), oldest first, as ``memory.keys.ApiKey``."""
        from .keys import ApiKey

        return [ApiKey(n, g, c, r, d) for n, d, g, c, r in self.storage.keys()]

    def key_for(self, token: str):
        """The ``ApiKey`` whose token this is (revoked or not), or None."""
        from .keys import ApiKey, digest

        rows = self.storage.keys(digest=digest(token)) if isinstance(token, str) and token else []
        if not rows:
            return None
        name, dig, grants, created, revoked = rows[0]
        return ApiKey(name, grants, created, revoked, dig)

    def revoke_key(self, name: str) -> None:
        """Revoke an API key by name (it stays listed, marked revoked).

        Raises:
            RecordNotFoundError: no valid key has this name.
        """
        if not self.storage.revoke_key(name):
            raise RecordNotFoundError(f"no valid key named {name!r} in {self.path}")

    def find_ids(self, where: dict, *, namespace: str = "default") -> list[int]:
        """Ids of the records of a namespace whose metadata equals every key/value of ``where``, ascending.

        Raises:
            ConfigError: a key or value ``where`` cannot hold (see ``search``).
        """
        if not isinstance(where, dict) or not where:
            raise ConfigError(f"where must be a non-empty dict of metadata key → value, got {where!r}")
        return sorted(self.storage.filter_ids(namespace, where))


# -- helpers -------------------------------------------------------------------------------


def _check_text(text, what: str) -> None:
    if not isinstance(text, str):
        raise InputError(f"{what} is {type(text).__name__}, not str")
    if not text.strip():
        raise InputError(f"{what} is empty or whitespace only; nothing to store")
    if "\x00" in text:
        raise InputError(f"{what} contains a NUL character at position {text.index(chr(0))}; not text")


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ConfigError(f"k must be a positive integer, got {k!r}")


def _check_namespace(namespace) -> None:
    if not isinstance(namespace, str) or not namespace.strip():
        raise ConfigError(f"namespace must be a non-empty string, got {namespace!r}")


def _normalize_metadata(metadata, n: int) -> list[dict]:
    import json

    if metadata is None:
        return [{} for _ in range(n)]
    if isinstance(metadata, dict):
        metas = [dict(metadata) for _ in range(n)]
    else:
        metas = list(metadata)
        if len(metas) != n:
            raise InputError(f"got {len(metas)} metadata dicts for {n} texts; give one per text or one for all")
    for i, m in enumerate(metas):
        if not isinstance(m, dict):
            raise InputError(f"metadata {i} is {type(m).__name__}, not a dict")
        try:
            json.dumps(m)
        except (TypeError, ValueError) as e:
            raise InputError(f"metadata {i} is not JSON-serializable: {e}") from e
    return metas


def _batched(items: Iterable, n: int) -> Iterator[list]:
    batch = []
    for x in items:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _progress(total: int | None, show: bool):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="passage", desc="adding", file=sys.stderr, dynamic_ncols=True)
