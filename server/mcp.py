"""The MCP server: an agent's long-term memory over stdio, in one namespace fixed at start.

Tools (schemas from the type hints, descriptions written for a model to call
them unaided): ``remember``, ``search``, ``recall``, ``ask``, ``summarize``, ``forget``. The
namespace comes from ``hashmem mcp --namespace`` and no tool takes one, so an
agent cannot leave its scope; ids of other namespaces are reported missing
(``tenancy`` through ``Service``, as for the HTTP server). A failed call
returns a one-line error the model can read.

What it does not do: HTTP (``app``) or keys (stdio has one client: the process that started it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from .errors import describe
from .service import Service
from .tenancy import Principal

INSTRUCTIONS = (
    "Long-term memory. Use `remember` to store facts worth keeping (one fact or observation per text), "
    "`search` to find stored memories relevant to a query before answering, `recall` to get the full text "
    "of memories by id (several at once with ids), `ask` to get an answer drawn only from memories with [id] citations, `summarize` "
    "for a cited summary of what is stored about a topic, and `forget` to delete memories that are wrong or "
    "no longer wanted. Memories are private to this agent's namespace."
)


def build(service: Service, namespace: str):
    """An ``MCPServer`` whose tools act on one namespace of the service's store."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    who = Principal(name=f"mcp:{namespace}", grants={namespace: "write"})
    server = MCPServer("hashmem", instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)

    def call(fn, *args, **kwargs):
        try:
            return fn(who, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every failure becomes one line for the model
            status, code, message = describe(e)
            raise ToolError(f"{code}: {message}") from e

    def empty() -> bool:
        return not service.memory.has_namespace(namespace)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False))
    def remember(
        text: Annotated[str, Field(description="The memory to store: one fact, observation or note, in plain text.")],
        metadata: Annotated[dict[str, Any] | None, Field(
            description="Optional labels to filter by later, e.g. {\"topic\": \"food\", \"session\": 3}.")] = None,
    ) -> dict:
        """Store one memory; returns its id (use it with recall or forget). A memory that repeats or updates one
        already stored replaces it (the newer text and labels win) under the same id, returned with
        "duplicate": true."""
        matches: list = []
        id = call(service.add, [text], namespace=namespace, metadata=metadata, dedup="replace", matches=matches)[0]
        return {"id": id, "duplicate": True, "score": round(matches[0].score, 4)} if matches else {"id": id}

    @server.tool(annotations=read_only)
    def search(
        query: Annotated[str, Field(description="What to look for, in natural language.")],
        k: Annotated[int, Field(ge=1, le=50, description="How many memories to return (1-50).")] = 5,
        where: Annotated[dict[str, str | int | float | bool | None] | None, Field(
            description="Optional metadata filter: only memories whose labels equal all of these.")] = None,
        mode: Annotated[Literal["binary+int8", "hybrid"], Field(
            description="binary+int8: by meaning only; hybrid: meaning and the query's exact words "
                        "(names, numbers, rare terms); the default.")] = "hybrid",
        recency_weight: Annotated[float, Field(ge=0, le=1, description=(
            "Prefer newer memories when relevance ties closely: 0 (default) off, 0.02-0.05 a tie-break, "
            "larger pushes newer memories up further."))] = 0.0,
    ) -> dict:
        """Find the stored memories most relevant to a query: `memories`, best first, each with its id,
        score (higher is closer: a cosine, or in hybrid mode a blend in [0, 1]), keywords and labels; an
        empty list when nothing is stored yet."""
        if empty():
            return {"memories": []}
        hits = call(service.search, query, k, namespace=namespace, where=where, mode=mode,
                    recency_weight=recency_weight)
        return {"memories": [{"id": h.id, "score": round(h.score, 4), "keywords": h.hints, "metadata": h.metadata}
                             for h in hits]}

    @server.tool(annotations=read_only)
    def recall(
        id: Annotated[int | None, Field(description="The id of one memory, as returned by search or remember.")] = None,
        ids: Annotated[list[int] | None, Field(min_length=1, max_length=50, description=(
            "Instead of id: several ids at once (up to 50), e.g. every hit of a search; read together, "
            "which is faster than one call per id."))] = None,
    ) -> dict:
        """Get the full text of one memory by id, or of several by ids (`memories`, in the order asked): exact if
        the store keeps text, otherwise rebuilt from its keywords (`exact` says which; `fidelity` is how close a
        rebuilt text is, 1.0 = exact)."""
        if (id is None) == (ids is None):
            raise ToolError("invalid_input: give either id (one memory) or ids (several)")

        def shown(r) -> dict:
            return {"id": r.id, "text": r.text, "exact": r.exact, "fidelity": round(r.fidelity, 4)}

        if id is not None:
            return shown(call(service.recall, id))
        return {"memories": [shown(r) for r in call(service.recall_many, ids)]}

    @server.tool(annotations=read_only)
    def ask(
        question: Annotated[str, Field(description="A question to answer from the stored memories only.")],
        k: Annotated[int, Field(ge=1, le=20, description="How many memories to draw on (1-20).")] = 5,
    ) -> dict:
        """Answer a question using only the stored memories, citing them as [id]; `found` is false when the
        memories do not hold the answer."""
        if empty():
            return {"answer": "No memories are stored yet.", "citations": [], "found": False}
        a = call(service.ask, question, k, namespace=namespace).answer
        return {"answer": a.text, "citations": a.citations, "found": a.found}

    @server.tool(annotations=read_only)
    def summarize(
        query: Annotated[str, Field(description="A topic or question to summarize the stored memories about.")],
        k: Annotated[int, Field(ge=1, le=20, description="How many memories to draw on (1-20).")] = 5,
    ) -> dict:
        """A short summary of what the stored memories say about a topic, every sentence citing its memories
        as [id]; `found` is false when no stored memory is about it."""
        if empty():
            return {"summary": "No memories are stored yet.", "citations": [], "found": False}
        s = call(service.summarize, query, k, namespace=namespace).answer
        return {"summary": s.text, "citations": s.citations, "found": s.found}

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=False))
    def forget(ids: Annotated[list[int], Field(min_length=1, description="Ids of the memories to delete.")]) -> dict:
        """Delete memories by id (all or none: an unknown id deletes nothing)."""
        return {"deleted": call(service.delete, ids)}

    return server


def run(memory, *, namespace: str, decoder: str = "auto", model: str | None = None) -> None:
    """Serve one namespace of a store over stdio until the client closes it."""
    service = Service(memory, decoder=decoder, model=model)
    service.warm_up(decoder=True)
    build(service, namespace).run("stdio")
