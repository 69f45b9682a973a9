"""A large add's earlier text bodies are compressed fast (``tiers.provisional``), and none outlives the add.

Real SciFact abstracts, real SQLite and zstd; every body is checked against what the text tier
makes at level 19 under the store's current dictionary.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_ingest_equal import TEXTS

from hashmem.memory import Memory
from hashmem.memory.tiers import provisional, trial
from hashmem.memory.tiers import text as tt


def _levels(monkeypatch) -> list[int]:
    seen: list[int] = []
    real = tt.TextTier.encode

    def encode(self, texts, **kw):
        seen.append(kw.get("level", tt.LEVEL))
        return real(self, texts, **kw)

    monkeypatch.setattr(tt.TextTier, "encode", encode)
    return seen


def _all_final(mem) -> None:
    tier = mem._text_tier()
    texts = [mem.get(i).text for i in range(1, len(mem) + 1)]
    bodies = [b for _, part in tier.storage.iter_texts() for b in part]
    assert bodies == tier.encode(texts)  # level 19, the current dictionary: no provisional body left


@pytest.mark.parametrize("pays", [True, False])
def test_provisional_bodies_are_recompressed_by_the_end_of_the_add(tmp_path, monkeypatch, pays):
    levels = _levels(monkeypatch)
    if not pays:  # once a dictionary is there, no new one pays: the current one is adopted again (Bodies.settle)
        real = tt.TextTier.maybe_retrain

        def retrain(self, **kw):
            if self.current_generation():
                monkeypatch.setattr(tt, "MIN_GAIN", 1.0)
            return real(self, **kw)

        monkeypatch.setattr(tt.TextTier, "maybe_retrain", retrain)
    emb = np.random.default_rng(0).standard_normal((len(TEXTS), 384)).astype(np.float32)
    with Memory(tmp_path / "t.db", fidelity="text", batch_size=100) as mem:
        mem.add(TEXTS, embeddings=emb, progress=False)
        gen = mem._text_tier().current_generation()
        assert gen == 2  # trained after the first batch, then adopted (again) after the last
        if not pays:
            assert tt.MIN_GAIN == 1.0
        assert [mem.get(i).text for i in (1, 350, 700)] == [TEXTS[0], TEXTS[349], TEXTS[699]]
        _all_final(mem)
    assert provisional.LEVEL in levels and levels.count(provisional.LEVEL) == 5  # batches 2-6 of 7


def test_an_add_whose_retraining_is_not_due_makes_no_provisional_body(tmp_path, monkeypatch):
    emb = np.random.default_rng(1).standard_normal((len(TEXTS), 384)).astype(np.float32)
    with Memory(tmp_path / "t.db", fidelity="text", batch_size=100) as mem:
        mem.add(TEXTS[:600], embeddings=emb[:600], progress=False)
        levels = _levels(monkeypatch)
        mem.add(TEXTS[600:], embeddings=emb[600:], progress=False)  # 700 < 2 x 600: no retraining due
        assert provisional.LEVEL not in levels
        mem.add(TEXTS[:300], embeddings=emb[:300], progress=False, dedup="keep")  # 1000 < 1200 either
        assert provisional.LEVEL not in levels
        _all_final(mem)


def test_the_adds_last_retraining_is_trained_on_a_thread_while_its_last_batches_are_written(tmp_path, monkeypatch):
    import threading

    started, trained = [], []
    real_start, real_train = tt.TextTier.start_trial, trial.train

    def start_trial(self, n):
        started.append((self.storage.count(), n))
        return real_start(self, n)

    def train(tier, *a, **kw):
        trained.append(threading.current_thread() is threading.main_thread())
        return real_train(tier, *a, **kw)

    monkeypatch.setattr(tt.TextTier, "start_trial", start_trial)
    monkeypatch.setattr(trial, "train", train)
    emb = np.random.default_rng(2).standard_normal((len(TEXTS), 384)).astype(np.float32)
    with Memory(tmp_path / "t.db", fidelity="text", batch_size=100) as mem:
        mem.add(TEXTS, embeddings=emb, progress=False)
        assert started == [(600, 700)]  # a quarter of the add (175) left: before its last batch, once
        assert trained == [True, False]  # after the first batch (no dictionary yet), then on a thread
        assert mem._text_tier().current_generation() == 2
        _all_final(mem)
