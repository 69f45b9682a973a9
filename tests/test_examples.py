"""The examples a user copies must run and find the right memories."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name, *args):
    env = {k: v for k, v in os.environ.items() if k != "HASHMEM_STORE"}  # the examples' own temporary store
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          check=True, timeout=300, env=env).stdout


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


def _demo(*prefix):
    code = ("import runpy, sys; " + "; ".join(prefix) + "; sys.argv = ['demo.py']; "
            f"runpy.run_path({str(EXAMPLES / 'demo.py')!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)


def test_demo_searches_recalls_and_asks_without_warnings():
    r = _demo("pass")
    assert "? both sides prayed to the same God" in r.stdout and "second_inaugural_address.txt" in r.stdout
    assert "recall [" in r.stdout and "fidelity" in r.stdout
    assert "ask: " in r.stdout and "cites: " in r.stdout
    answer = r.stdout.split("ask: ", 1)[1]
    assert "Bible [" in answer and "second_inaugural_address.txt" in answer, answer  # the answer, cited
    assert "warning" not in r.stderr.lower() and "please consider" not in r.stderr.lower(), r.stderr


def test_demo_without_llama_cpp_uses_the_extractive_decoder():
    r = _demo("sys.modules['llama_cpp'] = None")  # import llama_cpp now raises ImportError
    assert "(using the extractive decoder" in r.stdout
    assert "rebuilt by the extractive decoder" in r.stdout and "ask: " in r.stdout
    assert "warning" not in r.stderr.lower(), r.stderr
