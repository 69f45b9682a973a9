"""A LangChain chain over a hashmem store: retriever | prompt | chat model.

The retriever is `HashmemRetriever` over a `text`-tier store, so the
documents hold the exact passages. The chat model here is a stand-in that
returns the prompt it was given (so the demo needs no model and shows what a
real model would read); swap in any LangChain chat model.

Run:  python examples/langchain_chain.py "what did Lincoln say about malice?"
With HASHMEM_STORE set (a path or a milvus://HOST:PORT/COLLECTION URI of a
text-fidelity store, or where to create one) the passages go there instead of
a temporary local store (loaded once).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from hashmem import Memory
from hashmem.integrations.langchain import HashmemRetriever, HashmemVectorStore
from hashmem.memory.chunk import chunk_text

TEXTS = Path(__file__).parent / "texts"
PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer only from the passages; cite them by source.\n\n{context}"),
    ("human", "{question}"),
])


def load(mem: Memory) -> None:
    store = HashmemVectorStore(mem, namespace="docs")
    for path in sorted(TEXTS.glob("*.txt")):
        chunks = chunk_text(path.read_text(encoding="utf-8"), tokens=96)
        store.add_texts([c.text for c in chunks], [{"source": path.name} for _ in chunks])


def format_docs(docs) -> str:
    return "\n\n".join(f"({d.metadata['source']}) {d.page_content}" for d in docs)


def echo_model(prompt_value) -> str:  # stand-in for a chat model: what it would be asked
    return "\n".join(f"[{m.type}] {m.content}" for m in prompt_value.to_messages())


def main(question: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, Memory(os.environ.get("HASHMEM_STORE") or Path(tmp) / "docs.db",
                                                       fidelity="text") as mem:
        if not mem.has_namespace("docs"):
            load(mem)
        retriever = HashmemRetriever(memory=mem, namespace="docs", k=2)
        chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | PROMPT | RunnableLambda(
            echo_model)
        print(chain.invoke(question))


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "what did Lincoln say about malice?")
