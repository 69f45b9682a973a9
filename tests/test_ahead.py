"""An add embeds batch k + 1 while it stores batch k (``memory.ahead``), and nothing else changes.

The logic (what runs when, where errors surface) is checked on a fake store whose embedder
records its calls; the store it makes is checked with the real embedder and a real SQLite file:
the same vectors, ids and texts as adding the batches one call each (no look-ahead), and a
source that fails after two batches leaves exactly those two stored.
"""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from hashmem.memory import InputError, Memory, ahead


class FakeStore:
    """What ``ahead.batches`` uses of a ``Memory``: ``_embed`` (recorded) and ``quantizer``."""

    def __init__(self, quantizer=None) -> None:
        self.quantizer = quantizer
        self.embedded: list[list[str]] = []
        self.running = threading.Event()  # set while an embedding after the first runs
        self.release = threading.Event()

    def _embed(self, texts):
        self.embedded.append(list(texts))
        if len(self.embedded) > 1:
            self.running.set()
            self.release.wait(10)
        return np.ones((len(texts), 2), np.float32)


def _rows(n: int) -> list[tuple[str, dict]]:
    return [(f"passage {i}", {}) for i in range(n)]


def test_the_next_batch_is_embedded_while_this_one_is_stored():
    store = FakeStore(quantizer=object())
    it = ahead.batches(store, _rows(5), 2)
    first = next(it)
    assert first.texts == ["passage 0", "passage 1"] and first.vectors().shape == (2, 2)
    assert store.running.wait(10), "batch 2's embedding did not start while batch 1 was in the caller's hands"
    assert store.embedded[1] == ["passage 2", "passage 3"]
    store.release.set()
    rest = list(it)
    assert [b.offset for b in rest] == [2, 4] and [b.texts for b in rest] == [["passage 2", "passage 3"], ["passage 4"]]
    assert all(b.embedded for b in [first, *rest])


def test_a_fresh_store_stores_its_first_batch_before_embedding_the_second():
    store = FakeStore(quantizer=None)  # storing the first batch calibrates the quantizer, which embeds
    store.release.set()
    it = ahead.batches(store, _rows(6), 2)
    next(it)
    assert len(store.embedded) == 1
    store.quantizer = object()  # the caller stored it
    next(it)
    assert len(store.embedded) == 3  # the third batch's embedding started with the second's hand-over


def test_errors_of_the_next_batch_come_after_this_one_is_stored():
    def source():
        yield from _rows(4)
        raise OSError("the source failed while reading")

    store = FakeStore(quantizer=object())
    store.release.set()
    it = ahead.batches(store, source(), 2)
    got = [next(it).texts, next(it).texts]
    assert got == [["passage 0", "passage 1"], ["passage 2", "passage 3"]]
    with pytest.raises(OSError, match="failed while reading"):
        next(it)

    bad = ahead.batches(store, [*_rows(2), ("", {})], 2)
    assert next(bad).texts == ["passage 0", "passage 1"]
    with pytest.raises(InputError, match="passage 2"):
        next(bad)


def test_an_embedding_error_is_raised_by_its_batch_only():
    class Failing(FakeStore):
        def _embed(self, texts):
            if texts[0] == "passage 2":
                raise RuntimeError("the embedder failed")
            return np.ones((len(texts), 2), np.float32)

    it = ahead.batches(Failing(quantizer=object()), _rows(4), 2)
    assert next(it).vectors().shape == (2, 2)
    second = next(it)  # handed over; its error is the caller's to meet, inside its own error handling
    with pytest.raises(RuntimeError, match="embedder failed"):
        second.vectors()


def test_given_embeddings_are_handed_over_as_they_are():
    emb = np.arange(10, dtype=np.float32).reshape(5, 2)
    got = list(ahead.batches(FakeStore(), _rows(5), 2, emb))
    assert [b.embedded for b in got] == [False] * 3
    assert np.array_equal(np.concatenate([b.vectors() for b in got]), emb)


def _stored(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT r.id, r.qvec, t.body FROM records r JOIN texts t ON t.id = r.id ORDER BY r.id").fetchall()
    finally:
        conn.close()


def test_a_store_added_with_the_look_ahead_holds_what_one_add_per_batch_holds(tmp_path, passages):
    texts = passages * 3  # 3 batches of 4, the last shorter
    with Memory(tmp_path / "ahead.db", fidelity="text", batch_size=4) as mem:
        ids = mem.add(texts)
    with Memory(tmp_path / "apart.db", fidelity="text", batch_size=4) as mem:
        apart = [i for s in range(0, len(texts), 4) for i in mem.add(texts[s : s + 4])]
    assert ids == apart
    assert _stored(tmp_path / "ahead.db") == _stored(tmp_path / "apart.db")


def test_a_source_failing_after_two_batches_leaves_them_stored(tmp_path, passages):
    def source():
        for t in passages[:8]:
            yield t, {}
        raise OSError("the source failed while reading")

    with Memory(tmp_path / "m.db", fidelity="text", batch_size=4) as mem:
        with pytest.raises(OSError, match="failed while reading"):
            mem.add_passages(source())
        assert len(mem) == 8
        assert [mem.get(i).text for i in mem.ids()] == passages[:8]
