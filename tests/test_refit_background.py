"""A refit fitted on a thread while an add goes on (``refit.Refits``) leaves the store a refit in place leaves.

Real SciFact abstracts, real SQLite, fixed random embeddings; the fit is slowed so that batches are
inserted while it runs (with the previous hasher's codes), and its write re-encodes them.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import numpy as np
from test_ingest_equal import TEXTS

from hashmem.memory import Memory
from hashmem.memory import refit as refitting


def _stored(path) -> tuple[list[tuple], bytes]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT * FROM records ORDER BY id").fetchall()
        hasher = conn.execute("SELECT value FROM meta WHERE key = 'hasher'").fetchone()
        return rows, hasher
    finally:
        conn.close()


def test_a_refit_fitted_during_the_add_ends_with_the_codes_of_refits_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(refitting, "FIRST_FIT", 300)
    monkeypatch.setattr(refitting, "REFIT_GROWTH", 2)
    emb = np.random.default_rng(0).standard_normal((len(TEXTS), 384)).astype(np.float32)
    with Memory(tmp_path / "steps.db", batch_size=100) as mem:  # one add per batch: each refit in place
        for s in range(0, len(TEXTS), 100):
            mem.add(TEXTS[s : s + 100], embeddings=emb[s : s + 100], progress=False)
        in_place = mem.hasher.fitted_on
    fitted, written = [], []
    real_fitted, real_write = refitting._fitted, refitting._write

    def slow_fit(mem, base, n, sample):
        fitted.append((n, threading.current_thread() is threading.main_thread()))
        time.sleep(0.5)  # batches go in meanwhile
        return real_fitted(mem, base, n, sample)

    def write(mem, base, new, **kw):
        written.append((new.fitted_on, mem.backend.count()))
        return real_write(mem, base, new, **kw)

    monkeypatch.setattr(refitting, "_fitted", slow_fit)
    monkeypatch.setattr(refitting, "_write", write)
    with Memory(tmp_path / "one.db", batch_size=100) as mem:
        mem.add(TEXTS, embeddings=emb, progress=False)
        assert mem.hasher.fitted_on == in_place == 600
        assert len(mem) == len(TEXTS)
    assert [n for n, _ in fitted] == [300, 600] and not any(main for _, main in fitted)
    assert written[0][0] == 300 and written[0][1] > 300  # batches stored while it was fitted, re-encoded
    assert _stored(tmp_path / "one.db") == _stored(tmp_path / "steps.db")


def test_an_add_that_finds_repeats_refits_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(refitting, "FIRST_FIT", 300)
    emb = np.random.default_rng(1).standard_normal((400, 384)).astype(np.float32)
    threads = []
    real_fitted = refitting._fitted

    def fit(*a):
        threads.append(threading.current_thread() is threading.main_thread())
        return real_fitted(*a)

    monkeypatch.setattr(refitting, "_fitted", fit)
    with Memory(tmp_path / "d.db", batch_size=100) as mem:
        mem.add(TEXTS[:400], embeddings=emb, progress=False, dedup="skip")
        assert mem.hasher.fitted_on == 300
    assert threads == [True]
