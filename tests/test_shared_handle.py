"""Threads of one process sharing one open store: the readers–writer lock, and searches that never see
a half-swapped state (a new hasher beside the old index) while another thread or process refits."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hashmem.memory import Memory
from hashmem.memory.rwlock import RWLock


def test_readers_share_and_a_writer_is_alone():
    lock, inside, most, writer_saw = RWLock(), [0], [0], []
    gate = threading.Barrier(3)

    def reader():
        with lock.read():
            inside[0] += 1
            gate.wait(timeout=5)  # all three readers are in at once
            most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            inside[0] -= 1

    def writer():
        time.sleep(0.02)
        with lock.write():
            writer_saw.append(inside[0])

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert most == [3] and writer_saw == [0]


def test_reentrant_the_ways_a_store_needs_and_no_read_to_write_upgrade():
    lock = RWLock()
    with lock.write(), lock.write(), lock.read():  # a write calls helpers that read or write
        pass
    with lock.read(), lock.read():
        with pytest.raises(RuntimeError, match="cannot take the write lock"):
            with lock.write():
                pass
    with lock.write():  # released cleanly after all of that
        pass


def test_a_waiting_writer_keeps_new_readers_out():
    lock, order = RWLock(), []
    first_in = threading.Event()

    def first_reader():
        with lock.read():
            first_in.set()
            time.sleep(0.2)
            order.append("reader 1 out")

    def writer():
        first_in.wait(5)
        with lock.write():
            order.append("writer")

    def late_reader():
        first_in.wait(5)
        time.sleep(0.05)  # the writer is waiting by now
        with lock.read():
            order.append("reader 2")

    threads = [threading.Thread(target=f) for f in (first_reader, writer, late_reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert order == ["reader 1 out", "writer", "reader 2"]


@pytest.mark.slow
def test_searches_in_threads_always_find_hits_while_a_thread_adds_and_refits(tmp_path):
    """4 searching threads on one handle while a fifth adds and refits it again and again (each refit swaps
    hasher and index): every search answers with k hits, none fails."""
    rng = np.random.default_rng(1)
    dim = 384
    with Memory(tmp_path / "s.db", fidelity="text") as mem:
        mem.add([f"seed passage {i}" for i in range(300)], namespace="h", progress=False,
                embeddings=rng.standard_normal((300, dim)).astype(np.float32))
        queries = rng.standard_normal((8, dim)).astype(np.float32)
        stop, bad, answered = threading.Event(), [], [0]

        def search():
            while not stop.is_set():
                try:
                    hits = mem.search_embeddings(queries, 5, namespace="h")
                except Exception as e:  # noqa: BLE001 - every failure is what the test reports
                    bad.append(repr(e))
                    continue
                answered[0] += 1
                bad.extend(f"{len(h)} hits" for h in hits if len(h) != 5)

        threads = [threading.Thread(target=search) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for r in range(6):
                mem.add([f"added passage {r}"], namespace="h", progress=False,
                        embeddings=rng.standard_normal((1, dim)).astype(np.float32))
                mem.refit()
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        assert answered[0] > 10 and not bad, (answered[0], bad[:5])
        assert mem.hasher.generation >= 6 and len(mem) == 306
