"""The collector is paused while a batch is written (``gcpause``) and left as it was found."""

from __future__ import annotations

import gc
import threading

import numpy as np
from test_ingest_equal import TEXTS

from hashmem.memory import Memory, gcpause, hints


def test_a_batch_is_tokenized_without_the_collector_and_the_add_leaves_it_as_it_was(tmp_path, monkeypatch):
    seen = []
    real = hints.tokenize

    def tokenize(text):
        seen.append(gc.isenabled())
        return real(text)

    monkeypatch.setattr(hints, "tokenize", tokenize)
    emb = np.random.default_rng(0).standard_normal((40, 384)).astype(np.float32)
    assert gc.isenabled()
    with Memory(tmp_path / "s.db", batch_size=16) as mem:
        assert mem.add(TEXTS[:20], embeddings=emb[:20], progress=False) == list(range(1, 21))
        assert gc.isenabled() and seen and not any(seen)
        gc.disable()
        try:
            mem.add(TEXTS[20:40], embeddings=emb[20:], progress=False)
            assert not gc.isenabled()  # a caller's choice stands
        finally:
            gc.enable()
        assert len(mem) == 40


def test_pauses_nest_and_overlap_across_threads():
    inner = threading.Event()
    release = threading.Event()
    states = []

    def other():
        with gcpause.paused():
            inner.set()
            release.wait(10)
        states.append(gc.isenabled())

    with gcpause.paused():
        t = threading.Thread(target=other)
        t.start()
        inner.wait(10)
        with gcpause.paused():
            states.append(gc.isenabled())
        states.append(gc.isenabled())
    states.append(gc.isenabled())  # the other thread's pause still runs
    release.set()
    t.join()
    assert states == [False, False, False, True] and gc.isenabled()
