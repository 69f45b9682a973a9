"""LangChain: the standard suites of langchain-tests over a real store, and page_content per fidelity tier.

The suites' own embeddings (``get_embeddings()``, 6-dimensional fakes) are not
used: hashmem embeds with its store's model, which the suites' assertions
(exact-text and metadata round trips, nearest first) hold for. One store is
shared by the module; every test gets a namespace of its own, so each starts
empty as the suites require.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_core.documents import Document  # noqa: E402
from langchain_tests.integration_tests import (  # noqa: E402
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)

from hashmem.integrations.langchain import HashmemRetriever, HashmemVectorStore  # noqa: E402
from hashmem.memory import Memory  # noqa: E402

pytestmark = pytest.mark.slow
_fresh = itertools.count()


@pytest.fixture(scope="module")
def text_memory(tmp_path_factory):
    mem = Memory(tmp_path_factory.mktemp("lc") / "text.db", fidelity="text")
    yield mem
    mem.close()


class TestHashmemVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, text_memory):
        yield HashmemVectorStore(text_memory, namespace=f"suite-{next(_fresh)}")


_RETRIEVER_DIR = tempfile.TemporaryDirectory(prefix="hashmem-lc-")
_retriever_memory: list[Memory] = []


def retriever_memory() -> Memory:
    """A store with a few passages, made on first use (the suite reads constructor params from a property)."""
    if not _retriever_memory:
        mem = Memory(Path(_RETRIEVER_DIR.name) / "r.db", fidelity="text")
        mem.add([f"Lighthouse keeper log {i}: the lamp was lit at dusk." for i in range(6)], namespace="logs")
        _retriever_memory.append(mem)
    return _retriever_memory[0]


class TestHashmemRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        return HashmemRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"memory": retriever_memory(), "namespace": "logs"}

    @property
    def retriever_query_example(self) -> str:
        return "when was the lamp lit?"


def test_page_content_in_each_tier(tmp_path):
    text = "Ana is allergic to peanuts and carries an EpiPen since 2019."
    with Memory(tmp_path / "t.db", fidelity="text") as exact, Memory(tmp_path / "h.db") as hinted:
        for mem in (exact, hinted):
            HashmemVectorStore(mem).add_documents([Document(page_content=text, metadata={"user": "ana"})], ids=["a"])
        doc = HashmemVectorStore(exact).similarity_search("allergy", k=1)[0]
        assert doc == Document(page_content=text, metadata={"user": "ana"}, id="a")
        doc = HashmemVectorStore(hinted).similarity_search("allergy", k=1)[0]
        assert doc.id == "a" and doc.page_content != text and "peanuts" in doc.page_content
        assert doc.metadata["user"] == "ana" and doc.metadata["hashmem"]["exact"] is False
        assert 0 < doc.metadata["hashmem"]["fidelity"] < 1


def test_filter_and_scores(text_memory):
    store = HashmemVectorStore(text_memory, namespace="filters")
    store.add_texts(["Cats purr when content.", "Dogs bark at strangers.", "Cats sleep all day."],
                    [{"animal": "cat"}, {"animal": "dog"}, {"animal": "cat"}])
    docs = store.similarity_search("pets making sounds", k=3, filter={"animal": "cat"})
    assert {d.page_content for d in docs} == {"Cats purr when content.", "Cats sleep all day."}
    scored = store.similarity_search_with_relevance_scores("dogs barking", k=3)
    assert scored[0][0].page_content == "Dogs bark at strangers." and all(0 <= s <= 1 for _, s in scored)
    hybrid = HashmemVectorStore(text_memory, namespace="filters", mode="hybrid")
    blended = hybrid.similarity_search_with_score("dogs barking at strangers", k=3)
    direct = text_memory.search("dogs barking at strangers", 3, namespace="filters", mode="hybrid")
    assert [s for _, s in blended] == [h.score for h in direct] and blended[0][0].page_content == "Dogs bark at strangers."
    assert [s for _, s in hybrid.similarity_search_with_relevance_scores("dogs barking at strangers", k=3)] \
        == [h.score for h in direct]  # a blend in [0, 1] is its own relevance
    vectors = HashmemVectorStore(text_memory, namespace="filters", mode="binary+int8")
    cosines = text_memory.search("dogs barking", 3, namespace="filters", mode="binary+int8")
    assert [s for _, s in vectors.similarity_search_with_relevance_scores("dogs barking", k=3)] \
        == [(1 + h.score) / 2 for h in cosines]
    retrieved = HashmemRetriever(memory=text_memory, namespace="filters", k=1, mode="hybrid").invoke("strangers")
    assert [d.page_content for d in retrieved] == ["Dogs bark at strangers."]
    with pytest.raises(ValueError, match="mode"):
        HashmemVectorStore(text_memory, mode="bm25")


def teardown_module():
    for mem in _retriever_memory:
        mem.close()
    _RETRIEVER_DIR.cleanup()
