"""The MCP server: ``hashmem mcp`` as a subprocess, driven by the official SDK's stdio client."""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("mcp")
anyio = pytest.importorskip("anyio")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from hashmem.memory import Memory  # noqa: E402

pytestmark = pytest.mark.slow
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def server_params(store, namespace: str) -> StdioServerParameters:
    """``hashmem --store STORE mcp --namespace NS`` with this interpreter (the installed entry point)."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-c", "from hashmem.cli.main import main; main()", "--store", str(store), "mcp",
              "--namespace", namespace, "--decoder", "extractive"],
        env=ENV,
    )


def payload(result):
    assert not result.is_error, result.content
    assert len(result.content) == 1
    return json.loads(result.content[0].text)


def test_agent_memory_over_stdio(tmp_path):
    store = tmp_path / "agent.db"
    with Memory(store) as mem:  # another agent's memory in the same file
        other = mem.add(["The other agent's user owns a dog called Rex."], namespace="agent:other")[0]

    async def session():
        async with stdio_client(server_params(store, "agent:me")) as (r, w), ClientSession(r, w) as s:
            init = await s.initialize()
            assert "remember" in init.instructions
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == {"remember", "search", "recall", "ask", "summarize", "forget"}
            for t in tools.values():
                assert len(t.description) > 30
                props = t.input_schema["properties"]
                assert "namespace" not in props and all(p.get("description") for p in props.values())
            assert payload(await s.call_tool("search", {"query": "dog"})) == {"memories": []}  # nothing yet
            ids = [payload(await s.call_tool("remember", {"text": t, "metadata": {"topic": topic}}))["id"]
                   for t, topic in [("The user is allergic to peanuts.", "food"),
                                    ("The user's cat is called Miso.", "pets"),
                                    ("The user prefers meetings before noon.", "work")]]
            again = payload(await s.call_tool("remember", {"text": "the user is ALLERGIC to peanuts. ",
                                                           "metadata": {"topic": "food", "v": 2}}))
            assert again["id"] == ids[0] and again["duplicate"] is True and again["score"] >= 0.89  # not stored twice
            hits = payload(await s.call_tool("search", {"query": "what pet does the user have?", "k": 3}))["memories"]
            assert hits[0]["id"] == ids[1] and other not in [h["id"] for h in hits]
            hybrid = payload(await s.call_tool("search", {"query": "Miso", "k": 3, "mode": "hybrid"}))["memories"]
            assert hybrid[0]["id"] == ids[1] and all(0 <= h["score"] <= 1 for h in hybrid)  # the name, by its word
            res = await s.call_tool("search", {"query": "Miso", "mode": "bm25"})  # refused against the schema
            assert res.is_error
            only_food = payload(await s.call_tool("search", {"query": "pet", "where": {"topic": "food"}}))
            assert [h["id"] for h in only_food["memories"]] == [ids[0]]
            assert only_food["memories"][0]["metadata"] == {"topic": "food", "v": 2}  # replaced: the newer labels
            recalled = payload(await s.call_tool("recall", {"id": ids[0]}))
            assert "peanuts" in recalled["text"]
            several = payload(await s.call_tool("recall", {"ids": [ids[1], ids[0]]}))["memories"]
            assert [r["id"] for r in several] == [ids[1], ids[0]] and several[1] == recalled  # in the order asked
            assert "Miso" in several[0]["text"]
            for args in [{}, {"id": ids[0], "ids": [ids[1]]}, {"ids": [ids[0], other]}]:
                res = await s.call_tool("recall", args)  # neither, both, or another namespace's id among them
                assert res.is_error and "\n" not in res.content[0].text.strip(), (args, res)
            answer = payload(await s.call_tool("ask", {"question": "What is the user allergic to?"}))
            assert answer["found"] and ids[0] in answer["citations"]
            summary = payload(await s.call_tool("summarize", {"query": "the user's cat"}))
            assert summary["found"] and ids[1] in summary["citations"] and f"[{ids[1]}]" in summary["summary"]
            newest = payload(await s.call_tool("search", {"query": "the user", "k": 3, "recency_weight": 1.0,
                                                          "mode": "binary+int8"}))  # cosines: not min-max spread
            assert newest["memories"][0]["id"] == ids[2]  # the last remembered, pushed up by a large weight
            for name, args in [("recall", {"id": other}), ("forget", {"ids": [other]}),
                               ("remember", {"text": "  "}), ("search", {"query": "x", "where": {"a'b": 1}})]:
                res = await s.call_tool(name, args)  # refused by hashmem: one line the model can read
                assert res.is_error and "\n" not in res.content[0].text.strip(), (name, res)
            res = await s.call_tool("search", {"query": "x", "k": 0})  # refused by the SDK against the schema
            assert res.is_error and "greater than or equal to 1" in res.content[0].text
            assert payload(await s.call_tool("forget", {"ids": [ids[2]]})) == {"deleted": 1}
        return ids

    ids = anyio.run(session)
    with Memory(store) as mem:
        assert mem.namespaces() == {"agent:other": 1, "agent:me": 2}
        assert mem.get(other).namespace == "agent:other" and sorted(mem.ids("agent:me")) == ids[:2]
