"""LlamaIndex: the retriever alone and inside a query engine (llama-index-core's MockLLM: no model hub)."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.llms.mock import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from hashmem.integrations.llamaindex import HashmemLlamaRetriever  # noqa: E402
from hashmem.memory import Memory  # noqa: E402

pytestmark = pytest.mark.slow
FACTS = ["Ana is allergic to peanuts.", "Ben's thesis is due on 15 January.", "The office plant needs water on Fridays."]


def test_retriever_returns_scored_nodes(tmp_path):
    with Memory(tmp_path / "t.db", fidelity="text") as mem:
        ids = mem.add(FACTS, namespace="team", metadata=[{"i": i} for i in range(3)])
        mem.add(["Ana from another team hates peanuts."], namespace="other")
        nodes = HashmemLlamaRetriever(mem, namespace="team", k=2).retrieve("food allergy")
    assert len(nodes) == 2 and all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert nodes[0].node.id_ == str(ids[0]) and nodes[0].node.text == FACTS[0] and nodes[0].node.metadata == {"i": 0}
    assert nodes[0].score >= nodes[1].score
    with Memory(tmp_path / "t.db") as mem:
        hybrid = HashmemLlamaRetriever(mem, namespace="team", k=3, mode="hybrid", lexical_weight=0.5).retrieve("thesis")
        direct = mem.search("thesis", 3, namespace="team", mode="hybrid", lexical_weight=0.5)
    assert [n.node.id_ for n in hybrid] == [str(h.id) for h in direct] and hybrid[0].node.id_ == str(ids[1])
    assert [n.score for n in hybrid] == [h.score for h in direct]


def test_query_pipeline_with_a_mock_llm(tmp_path):
    with Memory(tmp_path / "h.db") as mem:  # hints tier: nodes hold flagged reconstructions
        mem.add(FACTS, namespace="team")
        engine = RetrieverQueryEngine.from_args(HashmemLlamaRetriever(mem, namespace="team", k=2), llm=MockLLM())
        response = engine.query("When is Ben's thesis due?")
    sources = response.source_nodes
    assert len(sources) == 2 and "January" in sources[0].node.text
    assert sources[0].node.metadata["hashmem"]["exact"] is False
    assert "January" in str(response)  # the mock LLM echoes its prompt: the retrieved context reached it
