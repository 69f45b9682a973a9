"""LlamaIndex: a ``BaseRetriever`` returning ``NodeWithScore`` from one namespace of a hashmem store.

Each hit becomes a ``TextNode`` whose ``id_`` is the record id (as a string),
whose text is the exact passage in a ``text``-tier store or a reconstruction
flagged in ``metadata["hashmem"]`` otherwise (see ``content``), and whose score
is the cosine between query and passage. Plug it into any LlamaIndex query
engine (``RetrieverQueryEngine.from_args(retriever, llm=...)``).

Needs the ``llamaindex`` extra (llama-index-core).
"""

from __future__ import annotations

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from .content import Contents


class HashmemLlamaRetriever(BaseRetriever):
    """The ``k`` passages of a namespace nearest to the query, as scored LlamaIndex nodes.

    Args:
        memory: an open ``Memory`` (the caller closes it).
        namespace: the namespace searched.
        k: nodes returned.
        where: optional metadata equality filter.
        decoder: decoder for the text in a hints-tier store (see ``content``).
        mode: ``hybrid`` (the default: the int8 cosine blended with BM25 of
            the query's words; scores in [0, 1]) or ``binary+int8`` (vectors only; cosines);
            ``lexical_weight`` is BM25's share in ``hybrid``.
    """

    def __init__(self, memory, *, namespace: str = "default", k: int = 4, where: dict | None = None,
                 decoder: str = "extractive", mode: str = "hybrid", lexical_weight: float | None = None) -> None:
        super().__init__()
        if mode not in ("binary+int8", "hybrid"):
            raise ValueError(f"mode must be binary+int8 or hybrid, got {mode!r}")
        self.memory, self.namespace, self.k, self.where = memory, namespace, k, where
        self.mode, self.lexical_weight = mode, lexical_weight
        self.contents = Contents(memory, decoder=decoder)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.memory.search(query_bundle.query_str, self.k, namespace=self.namespace, where=self.where,
                                  mode=self.mode, lexical_weight=self.lexical_weight)
        out = []
        for h, record in zip(hits, self.memory.recall_many([h.id for h in hits]), strict=True):  # llm: together
            text, meta = self.contents.of(record)
            out.append(NodeWithScore(node=TextNode(id_=str(h.id), text=text, metadata=meta), score=h.score))
        return out
