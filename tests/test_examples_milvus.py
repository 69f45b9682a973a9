"""Two examples run as a user would run them against a real Milvus server (``HASHMEM_STORE=milvus://…``).

The session's ``milvus_server`` fixture (tests/conftest.py) serves a fresh collection;
rag_backend.py fills it in-process, http_chatbot.py through ``hashmem serve`` in a
child process, agent_mcp.py through ``hashmem mcp``, demo.py with the llama decoder;
a second run reuses what the first stored.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.slow


def _run(name, store, *args):
    env = {**os.environ, "HASHMEM_STORE": store}
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          check=True, timeout=600, env=env).stdout


@pytest.fixture
def fresh_uri(milvus_server):
    name = f"ex_{uuid.uuid4().hex[:12]}"
    yield f"{milvus_server.uri}/{name}"
    milvus_server.drop_store(name)


def test_rag_backend_and_http_chatbot_on_a_milvus_store(fresh_uri, milvus_server):
    pytest.importorskip("fastapi")
    from hashmem import Memory

    q = "what did Lincoln say about malice?"
    out = _run("rag_backend.py", fresh_uri + "_rag", q)
    assert "With malice toward none" in out and "second_inaugural_address.txt" in out
    try:
        with Memory(fresh_uri + "_rag", create=False) as mem:  # the passages are in the engine
            n = len(mem)
        assert n > 0
        assert "With malice toward none" in _run("rag_backend.py", fresh_uri + "_rag", q)  # reused, not re-added
        with Memory(fresh_uri + "_rag", create=False) as mem:
            assert len(mem) == n
    finally:
        milvus_server.drop_store(fresh_uri.rsplit("/", 1)[1] + "_rag")

    out = _run("http_chatbot.py", fresh_uri, q)  # text fidelity: the server recalls exact passages from Milvus
    assert "server http://127.0.0.1:" in out and ": ok" in out
    passages = out.split("<passages>")[1].split("</passages>")[0]
    assert "(second_inaugural_address.txt)\nWith malice toward none" in passages
    with Memory(fresh_uri, create=False) as mem:
        assert mem.config.fidelity == "text" and len(mem) > 0


def test_demo_and_agent_mcp_on_a_milvus_store(fresh_uri, milvus_server):
    pytest.importorskip("mcp")
    out = _run("agent_mcp.py", fresh_uri)
    assert "remember #" in out and "Miso" in out and "Lisbon" in out
    try:
        out = _run("demo.py", fresh_uri + "_demo")
        assert "recall [" in out and "ask: " in out and "cites: [" in out
        again = _run("demo.py", fresh_uri + "_demo")  # the second run reuses the passages stored by the first
        assert again.split(" passages")[0].split()[-1] == out.split(" passages")[0].split()[-1]
    finally:
        milvus_server.drop_store(fresh_uri.rsplit("/", 1)[1] + "_demo")
