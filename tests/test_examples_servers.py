"""The server and framework examples run as a user would run them, and find the right memories.

(Kept apart from test_examples.py so the examples that need the ``server``,
``langchain`` extras are skipped together when those are not installed.)
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.slow


def _run(name, *args):
    env = {k: v for k, v in os.environ.items() if k != "HASHMEM_STORE"}  # the examples' own temporary store
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          check=True, timeout=300, env=env).stdout


def test_http_chatbot_calls_a_served_store_from_another_process():
    pytest.importorskip("fastapi")
    out = _run("http_chatbot.py", "what did Lincoln say about malice?")
    assert "server http://127.0.0.1:" in out and ": ok" in out
    passages = out.split("<passages>")[1].split("</passages>")[0]
    assert "(second_inaugural_address.txt)\nWith malice toward none" in passages


def test_agent_mcp_remembers_across_server_processes():
    pytest.importorskip("mcp")
    out = _run("agent_mcp.py")
    assert "tools: remember, search, recall, ask, summarize, forget" in out
    cookie = out.split("peanut butter cookie?' -> ")[1].split("\n")[0]
    assert "peanuts" in cookie
    pet = out.split("pet called?\" -> ")[1].split("\n")[0]
    assert "Miso" in pet
    assert "Lisbon" in out.split("ask -> ")[1]


def test_langchain_chain_puts_the_exact_passage_in_the_prompt():
    pytest.importorskip("langchain_core")
    out = _run("langchain_chain.py", "what did Lincoln say about malice?")
    assert "(second_inaugural_address.txt) With malice toward none, with charity for all" in out
    assert out.rstrip().endswith("[human] what did Lincoln say about malice?")
