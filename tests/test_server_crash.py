"""`hashmem serve` SIGKILLed while it adds, with a second writer on the same file and a reader that stays open.

Every passage the server acknowledged (201) and every one the other writer
stored is on disk; at most the one request in flight is committed without its
answer; the open reader sees it all; the file passes the full integrity check;
a new server on it searches and adds.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from conftest import PASSAGES, serve_process  # noqa: E402

from hashmem.memory import Memory  # noqa: E402

pytestmark = pytest.mark.slow
BATCH = 16


def test_server_killed_mid_add_loses_nothing_acknowledged(tmp_path):
    store = tmp_path / "served.db"
    with Memory(store) as m:
        m.add(PASSAGES, namespace="docs")
    reader = Memory(store)  # opened before, kept open across the crash
    other = Memory(store)  # the second writer, in this process
    served, direct, stop = [], [], threading.Event()

    def http_writer(url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            for j in range(0, 10**6, BATCH):
                texts = [f"server note {j + n} about topic {(j + n) % 13} in room {(j + n) % 7}" for n in range(BATCH)]
                try:
                    r = c.post("/v1/passages", json={"texts": texts, "namespace": "notes"})
                except httpx.TransportError:
                    return  # the server died with this request unanswered
                assert r.status_code == 201, r.text
                served.extend(r.json()["ids"])

    def direct_writer() -> None:
        j = 0
        while not stop.is_set():
            direct.extend(other.add([f"direct note {j} on shelf {j % 5}", f"direct note {j + 1} on shelf {(j + 1) % 5}"],
                                    namespace="direct", progress=False))
            j += 2

    with serve_process(store, "--decoder", "extractive") as (proc, url):
        writers = [threading.Thread(target=http_writer, args=(url,)), threading.Thread(target=direct_writer)]
        for t in writers:
            t.start()
        deadline = time.monotonic() + 240
        while len(served) < 4 * BATCH or len(direct) < 8:
            assert time.monotonic() < deadline, "the writers did not get going"
            assert proc.poll() is None
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the HTTP writer posts without pause: a request is being stored
        proc.wait(timeout=60)
        stop.set()
        for t in writers:
            t.join(timeout=120)
    assert proc.returncode == -signal.SIGKILL

    notes = set(reader.ids("notes"))  # the open handle sees what every process committed
    assert set(served) <= notes
    unanswered = notes - set(served)
    assert len(unanswered) in (0, BATCH)  # the request in flight: all of it or none (one transaction)
    if unanswered:
        assert max(served) < min(unanswered)  # the last request, after every answered one
    assert set(direct) == set(reader.ids("direct"))
    assert reader.search("server note about topic 3", 3, namespace="notes")
    other.close()
    reader.close()

    with Memory(store) as fresh:  # opening runs the integrity check; then the full one
        fresh.storage.check(bits=fresh.config.bits, dim=fresh.config.dim, generation=fresh.hasher.generation,
                            full=True)
        assert len(fresh) == len(PASSAGES) + len(notes) + len(direct)
    with serve_process(store, "--decoder", "extractive") as (_, url), httpx.Client(base_url=url, timeout=120) as c:
        assert c.post("/v1/search", json={"query": "Nobel prize", "k": 1, "namespace": "docs"}).status_code == 200
        r = c.post("/v1/passages", json={"texts": ["after the crash"], "namespace": "notes"})
        assert r.status_code == 201 and r.json()["ids"][0] > max(notes | set(direct))
