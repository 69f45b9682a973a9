"""A RAG backend: retrieve context for a chat prompt from a hashmem store.

The store holds the documents' passages as codes, int8 vectors and hints; the
exact text comes back through the metadata (source path + offsets) so the
prompt cites what was really written. A store created with fidelity="text"
would return `Memory.get(id).text` instead.

Run:  python examples/rag_backend.py "what did Lincoln say about malice?"
With HASHMEM_STORE set (a path or a milvus://HOST:PORT/COLLECTION URI) the
passages go there instead of a temporary local store (added once: a store
that already holds the "docs" namespace is used as it is).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from hashmem import Memory
from hashmem.memory import sources

TEXTS = Path(__file__).parent / "texts"


def build_store(path: Path | str) -> Memory:
    mem = Memory(path)
    if mem.has_namespace("docs"):  # a store given through HASHMEM_STORE, filled by an earlier run
        return mem
    files = sorted(TEXTS.glob("*.txt"))
    sources.check_all(files)  # all-or-nothing: validate before storing
    mem.add_passages(sources.passages(files, passage_tokens=96), namespace="docs", progress=False)
    return mem


def retrieve(mem: Memory, question: str, k: int = 3) -> list[dict]:
    """Top-k passages with their source text, for a chat prompt."""
    out = []
    for hit in mem.search(question, k=k, namespace="docs"):
        meta = hit.metadata
        text = Path(meta["source"]).read_text(encoding="utf-8")[meta["start"] : meta["end"]]
        out.append({"id": hit.id, "score": hit.score, "source": Path(meta["source"]).name, "text": text})
    return out


def chat_prompt(question: str, context: list[dict]) -> str:
    blocks = "\n\n".join(f"[{c['id']}] ({c['source']})\n{c['text']}" for c in context)
    return (
        "Answer the question using only the passages below; cite them like [12].\n\n"
        f"<passages>\n{blocks}\n</passages>\n\nQuestion: {question}\nAnswer:"
    )


if __name__ == "__main__":
    question = " ".join(sys.argv[1:]) or "what did Lincoln say about malice?"
    with tempfile.TemporaryDirectory() as tmp:
        with build_store(os.environ.get("HASHMEM_STORE") or Path(tmp) / "rag.db") as mem:
            print(chat_prompt(question, retrieve(mem, question)))
