"""The examples a user copies must run and find the right memories."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          check=True, timeout=300).stdout


def test_agent_memory_recalls_within_namespace():
    out = _run("agent_memory.py")
    ana = out.split("user:ana ? what food")[1].split("\n")[1]
    assert "peanuts" in ana
    ben_pet = out.split("user:ben ? does he have a pet?")[1].split("namespaces")[0]
    assert "Miso" not in ben_pet and "cat" not in ben_pet


def test_rag_backend_prompt_cites_the_right_passage():
    out = _run("rag_backend.py", "what did Lincoln say about malice?")
    assert "With malice toward none" in out
    assert "second_inaugural_address.txt" in out
