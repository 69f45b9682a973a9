"""One open store shared by a server's requests: its models, its locks, and every operation.

Each operation takes the asking ``Principal`` and checks it first (through
``tenancy``), then calls the public ``Memory`` and decoder API:

- Models load once per process: the embedder when the service starts
  (``warm_up``), the decoder on the first ``recall``, ``ask`` or ``summarize``.
- Concurrency: texts and queries are embedded *outside* any lock (the slow
  part), then ``Memory.add(..., embeddings=...)`` runs under an exclusive
  write lock and ``Memory.search_embeddings`` under a shared read lock, so
  many searches run at once and a long add stalls them only for its short
  storing steps. The decoder (llama.cpp is not thread-safe) has a lock of its own.
- Records of namespaces a principal may not read are reported as missing
  (404), the same as ids that never existed.

What it does not do: HTTP or MCP (``app``, ``mcp``), SQL (``hashmem.memory.backends.local.storage``).
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hashmem.memory import Hit, Match, Memory, Record, RecordNotFoundError
from hashmem.memory.chunk import DEFAULT_PASSAGE_TOKENS, chunk_text
from hashmem.memory.dedup import check_policy
from hashmem.memory.rwlock import RWLock

from .errors import ApiError
from .tenancy import Principal

MAX_K = 1000
MAX_CANDIDATES = 10_000
MAX_TEXTS = 4096
_WHERE_KEY = re.compile(r"^[\w.:@/ -]{1,64}$")


@dataclass(frozen=True)
class Asked:
    """An answer (or a summary) and the hits it was drawn from."""

    answer: object  # hashmem.decoders.Answer or Summary
    hits: list[Hit]


class Service:
    """A store opened once for a server process.

    Args:
        memory: the open store (the service does not close it).
        decoder: ``auto``, ``llama`` or ``extractive`` (see ``hashmem.decoders.open_decoder``).
        model: a GGUF path for the llama decoder.
        decoder_options: keyword options of the decoder (seed, candidates, threads...).
    """

    def __init__(self, memory: Memory, *, decoder: str = "auto", model: str | None = None,
                 decoder_options: dict | None = None) -> None:
        self.memory = memory
        self.lock = RWLock()
        self._decoder_kind, self._model, self._decoder_options = decoder, model, dict(decoder_options or {})
        self._decoder = None
        self._decoder_lock = threading.Lock()
        self.batch_size = memory.batch_size

    # -- models ------------------------------------------------------------------------------

    def warm_up(self, *, decoder: bool = False) -> None:
        """Load the embedding model now and check it against the store (once per process).

        Args:
            decoder: also open the decoder now (a server does, so no request pays for loading it).
        """
        namespace = next(iter(self.memory.namespaces()), "default")  # a non-empty one: the kernels compile too
        with self.lock.read():
            self.memory.search("warm up", 1, namespace=namespace)
        if decoder:
            with self._decoder_lock:
                self.decoder  # noqa: B018 - opened for its side effect

    def _embed(self, texts: Sequence[str]):
        return self.memory.embedder.encode(list(texts), progress=False)  # float32 [n, dim], no lock

    @property
    def decoder(self):
        """The decoder, opened on first use (call with ``_decoder_lock`` held)."""
        if self._decoder is None:
            from hashmem.decoders import DecoderFallbackWarning, open_decoder

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DecoderFallbackWarning)
                self._decoder = open_decoder(self.memory, self._decoder_kind, model=self._model,
                                             **self._decoder_options)
        return self._decoder

    # -- checks ------------------------------------------------------------------------------

    def _readable(self, p: Principal, namespace: str) -> None:
        p.require(namespace, "read")
        if not self.memory.has_namespace(namespace):
            raise ApiError(404, "unknown_namespace", f"namespace {namespace!r} holds no passages")

    def _record(self, p: Principal, id: int, access: str = "read") -> Record:
        """The record, if the principal may access its namespace; else 404 as for a missing id."""
        try:
            with self.lock.read():
                record = self.memory.get(id)
        except RecordNotFoundError:
            record = None
        if record is None or not p.can(record.namespace, access):
            raise RecordNotFoundError(f"no record with id {id}")
        return record

    # -- adding ------------------------------------------------------------------------------

    def add(self, p: Principal, texts: Sequence[str], *, namespace: str = "default",
            metadata: dict | Sequence[dict] | None = None, dedup: str = "keep",
            matches: list[Match] | None = None) -> list[int]:
        """Store passages in one namespace; returns their ids. Everything is checked before anything is stored.

        ``dedup`` as ``Memory.add`` takes it; ``matches`` gets a ``Match`` per repeat not stored.
        """
        p.require(namespace, "write")
        metas = _metadata_list(metadata, len(texts))
        _check_texts(texts, "text")
        check_policy(dedup)
        return self._store(list(zip(texts, metas, strict=True)), namespace, dedup=dedup, matches=matches)

    def add_documents(self, p: Principal, documents: Sequence[str], *, namespace: str = "default",
                      metadata: dict | Sequence[dict] | None = None,
                      passage_tokens: int = DEFAULT_PASSAGE_TOKENS) -> list[int]:
        """Chunk documents (as ``Memory.add_documents`` does) and store the passages."""
        p.require(namespace, "write")
        metas = _metadata_list(metadata, len(documents))
        _check_texts(documents, "document")
        if not 16 <= passage_tokens <= 4096:
            raise ApiError(400, "invalid_input", f"passage_tokens must be in [16, 4096], got {passage_tokens}")
        rows = []
        for d, (doc, meta) in enumerate(zip(documents, metas, strict=True)):
            for c in chunk_text(doc, tokens=passage_tokens):
                extra = {"start": c.start, "end": c.end, **({} if "source" in meta else {"doc": d})}
                rows.append((c.text, {**meta, **extra}))
        return self._store(rows, namespace)

    def _store(self, rows: list[tuple[str, dict]], namespace: str, *, dedup: str = "keep",
               matches: list[Match] | None = None) -> list[int]:
        ids: list[int] = []
        for s in range(0, len(rows), self.batch_size):
            batch = rows[s : s + self.batch_size]
            texts = [t for t, _ in batch]
            emb = self._embed(texts)  # the slow part, outside the lock
            found: list[Match] = []
            with self.lock.write():
                if dedup == "keep":
                    ids += self.memory.add(texts, metadata=[m for _, m in batch], namespace=namespace,
                                           embeddings=emb, progress=False)
                else:
                    ids += self.memory.add_passages(batch, namespace=namespace, total=len(batch), embeddings=emb,
                                                    progress=False, dedup=dedup, matches=found)
            if matches is not None:
                matches += [Match(s + m.position, m.id, m.score, m.exact) for m in found]
        return ids

    # -- reading -----------------------------------------------------------------------------

    def search(self, p: Principal, query: str, k: int = 10, *, namespace: str = "default",
               where: dict | None = None, candidates: int | None = None, mode: str = "hybrid",
               lexical_weight: float | None = None, recency_weight: float = 0.0) -> list[Hit]:
        """The k passages of one namespace nearest to the query (``mode``, ``recency_weight``: see ``Memory.search``)."""
        self._readable(p, namespace)
        _check_query(query, k, candidates)
        _check_where(where)
        if mode not in ("binary+int8", "hybrid"):
            raise ApiError(400, "invalid_input", f"mode must be binary+int8 or hybrid, got {mode!r}")
        q = self._embed([query])
        with self.lock.read():
            return self.memory.search_embeddings(q, k, namespace=namespace, where=where or None,
                                                 candidates=candidates, mode=mode, lexical_weight=lexical_weight,
                                                 query_texts=[query] if mode == "hybrid" else None,
                                                 recency_weight=recency_weight)[0]

    def get(self, p: Principal, id: int) -> Record:
        """One record (404 when missing or in a namespace the principal may not read)."""
        return self._record(p, id)

    def delete(self, p: Principal, ids: Sequence[int]) -> int:
        """Delete records; all or nothing: 404 if any is missing or not writable by the principal."""
        ids = list(dict.fromkeys(int(i) for i in ids))
        with self.lock.write():
            for i in ids:
                try:
                    ns = self.memory.get(i).namespace
                except RecordNotFoundError:
                    ns = None
                if ns is None or not p.can(ns, "write"):
                    raise RecordNotFoundError(f"no record with id {i}")
            return self.memory.delete(ids)

    def recall(self, p: Principal, id: int):
        """Rebuild one passage (``hashmem.decoders.Reconstruction``; exact in a text-tier store)."""
        record = self._record(p, id)
        with self._decoder_lock:
            return self.decoder.reconstruct(record)

    def recall_many(self, p: Principal, ids: Sequence[int]) -> list:
        """Rebuild several passages (``llm`` bodies decoded together: ``Memory.recall_many``); 404 as ``recall``."""
        try:
            with self.lock.read():
                records = self.memory.recall_many(ids)
        except RecordNotFoundError:
            records = [self._record(p, i) for i in ids]  # raises the one-id 404 of the first missing id
        for r in records:
            if not p.can(r.namespace, "read"):
                raise RecordNotFoundError(f"no record with id {r.id}")
        with self._decoder_lock:
            return [self.decoder.reconstruct(r) for r in records]

    def ask(self, p: Principal, question: str, k: int = 5, *, namespace: str = "default",
            on_token: Callable[[str], None] | None = None) -> Asked:
        """Answer from the namespace's memories only, citing them by id."""
        hits = self.search(p, question, k, namespace=namespace)
        with self._decoder_lock:
            return Asked(self.decoder.ask(question, hits, on_token=on_token), hits)

    def compact(self, p: Principal, max_bytes: int, *, namespace: str | None = None):
        """Demote exact texts to meet a byte budget (``Memory.compact``): with a namespace, a key that may
        write it; over the whole store, only an unrestricted principal (the budget is the store's)."""
        if namespace is None and not p.unrestricted:
            raise ApiError(403, "forbidden", "only an unrestricted key may compact the whole store; "
                                             "give a namespace this key may write")
        if namespace is not None:
            p.require(namespace, "write")
        with self.lock.write():
            return self.memory.compact(max_bytes, namespace=namespace)

    def summarize(self, p: Principal, query: str, k: int = 5, *, namespace: str = "default",
                  max_sentences: int = 3, method: str | None = None) -> Asked:
        """Summarize what the namespace's memories hold about the query, each sentence citing its ids."""
        if method not in (None, "extractive", "model"):
            raise ApiError(400, "invalid_input", f"method must be extractive or model, got {method!r}")
        if isinstance(max_sentences, bool) or not isinstance(max_sentences, int) or not 1 <= max_sentences <= 20:
            raise ApiError(400, "invalid_input", f"sentences must be an integer in [1, 20], got {max_sentences!r}")
        hits = self.search(p, query, k, namespace=namespace)
        with self._decoder_lock:
            try:
                return Asked(self.decoder.summarize(query, hits, max_sentences=max_sentences, method=method), hits)
            except ValueError as e:  # the extractive decoder stands in and the model's summary was asked for
                raise ApiError(400, "no_model", str(e).splitlines()[0]) from e

    def stats(self, p: Principal) -> dict:
        """Counts of the namespaces the principal may read; sizes only for an unrestricted principal."""
        with self.lock.read():
            namespaces = self.memory.namespaces()
            out = {"namespaces": {ns: namespaces[ns] for ns in p.visible(namespaces)},
                   "config": {k: v for k, v in vars(self.memory.config).items() if k != "fingerprint"}}
            out["records"] = sum(out["namespaces"].values())
            if p.unrestricted:
                s = self.memory.stats()
                out.update(bytes_per_passage=s.bytes_per_passage, file_bytes=s.file_bytes, hasher=s.hasher,
                           fidelities=s.fidelities)
        return out


# -- checks of request values the library would also refuse, made before anything is stored ------


def _check_texts(texts, what: str) -> None:
    if not isinstance(texts, list | tuple) or not texts:
        raise ApiError(400, "invalid_input", f"give a non-empty list of {what}s")
    if len(texts) > MAX_TEXTS:
        raise ApiError(400, "invalid_input", f"at most {MAX_TEXTS} {what}s per request, got {len(texts)}")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ApiError(400, "invalid_input", f"{what} {i} is empty or not a string")
        if "\x00" in t:
            raise ApiError(400, "invalid_input", f"{what} {i} contains a NUL character; not text")


def _metadata_list(metadata, n: int) -> list[dict]:
    if metadata is None:
        return [{} for _ in range(n)]
    if isinstance(metadata, dict):
        return [dict(metadata) for _ in range(n)]
    metas = list(metadata)
    if len(metas) != n or not all(isinstance(m, dict) for m in metas):
        raise ApiError(400, "invalid_input", f"metadata must be one object, or a list of {n} objects (one per text)")
    return metas


def _check_query(query, k, candidates) -> None:
    if not isinstance(query, str) or not query.strip():
        raise ApiError(400, "invalid_input", "the query is empty; give some text to search for")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ApiError(400, "k_out_of_range", f"k must be an integer in [1, {MAX_K}], got {k!r}")
    if candidates is not None and (isinstance(candidates, bool) or not isinstance(candidates, int)
                                   or not 1 <= candidates <= MAX_CANDIDATES):
        raise ApiError(400, "candidates_out_of_range",
                       f"candidates must be an integer in [1, {MAX_CANDIDATES}], got {candidates!r}")


def _check_where(where) -> None:
    if where is None:
        return
    if not isinstance(where, dict):
        raise ApiError(400, "bad_where", "where must be an object of metadata key → value")
    for key, value in where.items():
        if not _WHERE_KEY.match(key):
            raise ApiError(400, "bad_where", f"where keys are 1-64 letters, digits, spaces or _ . : @ / -; got {key!r}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ApiError(400, "bad_where", f"where value of {key!r} must be a string, number, boolean or null")
