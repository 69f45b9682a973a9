"""Shared fixtures. The real embedding model is used (it ships offline in a package)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

PASSAGES = [
    "The Boeing 747 flew from London to New York on 12 March 1998 carrying 416 passengers.",
    "Aerodynamic heating of slender bodies at hypersonic speed was measured in a wind tunnel.",
    "Alice was beginning to get very tired of sitting by her sister on the bank.",
    "The committee approved a budget of 3.5 million dollars for the new library in Boston.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.",
    "The recipe needs two cups of flour, one egg and a pinch of salt.",
    "Python's garbage collector frees objects that are no longer referenced.",
]


@contextmanager
def serve_process(store, *args: str, env: dict | None = None):
    """``hashmem --store STORE serve --port 0 ARGS`` in a child process; yields (process, base URL), stops it."""
    proc = subprocess.Popen([sys.executable, "-c", "from hashmem.cli.main import main; main()", "--store", str(store),
                             "serve", "--port", "0", *args], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        url = next((m.group(1) for line in proc.stderr if (m := re.search(r"running on (http://\S+)", line))), None)
        assert url, f"hashmem serve ended before listening (exit {proc.wait()})"
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # drain the log
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=60)


def http_add_and_get(c) -> tuple[list[int], dict]:
    """Over HTTP (an httpx client ``c``): add two passages to namespace ``scratch``, get the first back.

    Returns the two ids and the first record's JSON, after checking its namespace, metadata and hints.
    """
    r = c.post("/v1/passages", json={"texts": ["Zed keeps bees on the roof in Lisbon.", "Zed's bees make honey."],
                                     "namespace": "scratch", "metadata": [{"i": 0}, {"i": 1}]})
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    got = c.get(f"/v1/passages/{ids[0]}").json()
    assert got["namespace"] == "scratch" and got["metadata"] == {"i": 0} and "Lisbon" in got["hints"]
    return ids, got


@pytest.fixture
def passages() -> list[str]:
    return list(PASSAGES)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def mem(store_path):
    from hashmem.memory import Memory

    m = Memory(store_path)
    m.add(PASSAGES, metadata=[{"n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(len(PASSAGES))])
    yield m
    m.close()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus standalone server on 127.0.0.1 for the whole session (tests/milvus_server.py).

    Skips, with the reason shown in pytest's summary, only when this platform cannot run it
    (not Linux x86_64, or the `milvus` extra is not installed); with HASHMEM_REQUIRE_MILVUS=1
    (set by `make test`, so CI) that is a failure instead. A server that fails to start is
    always a failure.
    """
    from milvus_server import MilvusServer, platform_supported

    reason = platform_supported()
    if reason:
        if os.environ.get("HASHMEM_REQUIRE_MILVUS") == "1":
            pytest.fail(f"HASHMEM_REQUIRE_MILVUS=1 but no Milvus server can run here: {reason}")
        pytest.skip(f"no Milvus server: {reason}")
    server = MilvusServer(tmp_path_factory.mktemp("milvus"))
    server.start()
    yield server
    server.stop(wait=0)  # its data is thrown away: a graceful stop took up to 15 s
