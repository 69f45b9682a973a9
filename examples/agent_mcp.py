"""An agent's long-term memory over MCP: the SDK's stdio client drives `hashmem mcp`.

What an agent framework does with a tool server, step by step: start
`hashmem mcp --namespace agent:demo` (stdio), list its tools, remember what
the user said in one session, and in a later session search and ask before
answering. The namespace is fixed by the flag: the agent cannot reach others.

Run:  python examples/agent_mcp.py   (HASHMEM_STORE=PATH-or-milvus://URI keeps the memory there)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

SESSION_1 = [
    ("The user is allergic to peanuts.", {"kind": "health"}),
    ("The user is planning a trip to Lisbon in May 2027.", {"kind": "plan"}),
    ("The user's cat is called Miso.", {"kind": "fact"}),
]


def server(store: Path | str) -> StdioServerParameters:
    env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HASHMEM_GGUF") if k in os.environ}
    return StdioServerParameters(
        command=sys.executable,
        args=["-c", "from hashmem.cli.main import main; main()", "--store", str(store), "mcp",
              "--namespace", "agent:demo", "--decoder", "extractive"],
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env})


async def call(session: ClientSession, tool: str, **arguments) -> dict:
    result = await session.call_tool(tool, arguments)
    text = result.content[0].text
    if result.is_error:
        raise RuntimeError(text)
    return json.loads(text)


async def main(store: Path | str) -> None:
    async with stdio_client(server(store)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        print("tools:", ", ".join(t.name for t in tools))
        print("-- session 1: the agent remembers")
        for text, meta in SESSION_1:
            print(f"remember #{(await call(session, 'remember', text=text, metadata=meta))['id']}: {text}")
    # the server process is gone; a new one opens the same store
    async with stdio_client(server(store)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        print("-- session 2 (a new server process): the agent recalls before answering")
        for query in ("can I offer the user a peanut butter cookie?", "what is the user's pet called?"):
            best = (await call(session, "search", query=query, k=1))["memories"][0]
            text = (await call(session, "recall", id=best["id"]))["text"]
            print(f"search {query!r} -> #{best['id']} ({best['score']:.2f}): {text}")
        answer = await call(session, "ask", question="Where is the user travelling in 2027?")
        print(f"ask -> {answer['answer']} (citations {answer['citations']})")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:  # HASHMEM_STORE: a path or milvus:// URI to keep the memory
        anyio.run(main, os.environ.get("HASHMEM_STORE") or Path(tmp) / "agent.db")
