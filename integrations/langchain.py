"""LangChain: a ``VectorStore`` and a ``BaseRetriever`` over one namespace of a hashmem store.

hashmem embeds with its store's own model (all-MiniLM-L6-v2 by default), so
the ``embedding`` that LangChain passes around is not used: ``embeddings`` is
None. LangChain ids (strings, chosen by the caller or made here) live in each
record's metadata under ``_lc_id``, hidden from the documents; adding a
document with an id that exists replaces it. What ``page_content`` holds
depends on the store's fidelity tier (``content``): the exact passage in a
``text``-tier store; in a ``hints``-tier store a reconstruction, flagged in
``metadata["hashmem"]``. Use ``Memory(path, fidelity="text")`` when a chain
needs the exact text back.

Needs the ``langchain`` extra (langchain-core).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, PrivateAttr

from hashmem.memory import Memory

from .content import Contents

ID_KEY = "_lc_id"


class HashmemVectorStore(VectorStore):
    """A LangChain vector store over one namespace of a hashmem store.

    Args:
        memory: an open ``Memory`` (the caller closes it).
        namespace: the namespace this store reads and writes.
        decoder: decoder for ``page_content`` in a hints-tier store (see ``content``).
        mode: ``hybrid`` (the default: the int8 cosine blended with BM25 of
            the query's words; scores in [0, 1]) or ``binary+int8`` (vectors only; cosines);
            ``lexical_weight`` is BM25's share in ``hybrid``.
    """

    def __init__(self, memory: Memory, *, namespace: str = "default", decoder: str = "extractive",
                 mode: str = "hybrid", lexical_weight: float | None = None) -> None:
        if mode not in ("binary+int8", "hybrid"):
            raise ValueError(f"mode must be binary+int8 or hybrid, got {mode!r}")
        self.memory, self.namespace, self.mode, self.lexical_weight = memory, namespace, mode, lexical_weight
        self.contents = Contents(memory, decoder=decoder, hidden=(ID_KEY,))

    @property
    def embeddings(self) -> Embeddings | None:
        """None: hashmem embeds texts with its store's own model."""
        return None

    def _records(self, lc_id: str) -> list[int]:
        return self.memory.find_ids({ID_KEY: lc_id}, namespace=self.namespace)

    def _document(self, record) -> Document:
        text, meta = self.contents.of(record)
        return Document(page_content=text, metadata=meta, id=record.metadata.get(ID_KEY, str(record.id)))

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        """Store texts (replacing records with the same ids); returns their ids."""
        texts = list(texts)
        metas = list(metadatas) if metadatas is not None else [{} for _ in texts]
        given = list(ids) if ids is not None else [None] * len(texts)
        if not len(metas) == len(given) == len(texts):
            raise ValueError(f"got {len(texts)} texts, {len(metas)} metadatas and {len(given)} ids")
        lc_ids = [str(i) if i is not None else uuid.uuid4().hex for i in given]
        stale = [r for i in lc_ids for r in self._records(i)]
        self.memory.add(texts, metadata=[{**(m or {}), ID_KEY: i} for m, i in zip(metas, lc_ids, strict=True)],
                        namespace=self.namespace, progress=False)
        if stale:  # after the new records are in: a failed add leaves the old ones
            self.memory.delete(stale)
        return lc_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by ids (unknown ids are ignored); True when done."""
        if ids is None:
            raise ValueError("give the ids to delete")
        self.memory.delete([r for i in ids for r in self._records(str(i))])
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents with these ids, in the order given; unknown ids are skipped."""
        return [self._document(r) for r in self.memory.recall_many([r for i in ids for r in self._records(str(i))])]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """Documents nearest to the query with their scores (cosines; a blend in [0, 1] in hybrid mode), best first."""
        hits = self.memory.search(query, k, namespace=self.namespace, where=filter or None, mode=self.mode,
                                  lexical_weight=self.lexical_weight)
        records = self.memory.recall_many([h.id for h in hits])  # llm bodies decoded together
        return [(self._document(r), h.score) for r, h in zip(records, hits, strict=True)]

    def similarity_search(self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[Document]:
        """Documents nearest to the query, best first (no score threshold)."""
        return [d for d, _ in self.similarity_search_with_score(query, k, filter=filter, **kwargs)]

    def _select_relevance_score_fn(self):
        if self.mode == "hybrid":
            return lambda score: score  # already a blend in [0, 1]
        return lambda score: (1.0 + score) / 2.0  # cosine in [-1, 1] → relevance in [0, 1]

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None, metadatas: list[dict] | None = None,
                   *, ids: list[str] | None = None, memory: Memory | None = None, path: str | None = None,
                   namespace: str = "default", **kwargs: Any) -> HashmemVectorStore:
        """A store over ``memory`` (or a ``Memory(path)``) holding these texts; ``embedding`` is not used."""
        if memory is None:
            if path is None:
                raise ValueError("give memory=Memory(...) or path=... for the hashmem store")
            memory = Memory(path, **{k: kwargs.pop(k) for k in ("fidelity", "bits", "method") if k in kwargs})
        store = cls(memory, namespace=namespace, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


class HashmemRetriever(BaseRetriever):
    """A LangChain retriever: the ``k`` passages of a namespace nearest to the query.

    Attributes:
        memory: an open ``Memory``.
        namespace: the namespace searched.
        k: documents returned (``invoke(query, k=...)`` overrides it).
        where: optional metadata equality filter.
        decoder: decoder for ``page_content`` in a hints-tier store.
        mode / lexical_weight: as ``HashmemVectorStore``'s (``binary+int8`` or ``hybrid``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any
    namespace: str = "default"
    k: int = 4
    where: dict | None = None
    decoder: str = "extractive"
    mode: str = "hybrid"
    lexical_weight: float | None = None
    _store: HashmemVectorStore | None = PrivateAttr(default=None)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        if self._store is None:  # one store, so the decoder loads once
            self._store = HashmemVectorStore(self.memory, namespace=self.namespace, decoder=self.decoder,
                                             mode=self.mode, lexical_weight=self.lexical_weight)
        return self._store.similarity_search(query, kwargs.get("k", self.k), filter=kwargs.get("where", self.where))
