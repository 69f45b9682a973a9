"""The text fidelity tier: byte-exact round trips, dictionary training, recompression."""

from __future__ import annotations

import gzip
import random

import numpy as np
import pytest

from hashmem.memory import Memory, StoreCorruptError
from hashmem.memory import texttier as tt
from hashmem.memory.config import StoreConfig
from hashmem.memory.storage import Storage

TRICKY = [
    "plain ascii",
    "Ünïcödé — “quotes”, emoji 🧠🔑, CJK 記憶は圧縮, RTL שלום, combining e\u0301",
    "line one\n\n\n\nline five after empty lines\n",
    "  leading and trailing spaces and a tab\t ",
    "windows\r\nline\r\nendings\r\n",
    "zero width\u200bjoiner and nbsp\u00a0here",
    "long " + " ".join(f"word{i % 97}" for i in range(40_000)),  # ~300 KB
]


def _prose(rng: random.Random, n: int) -> list[str]:
    subjects = ["The patient cohort", "Our model", "The enzyme", "A randomized trial", "The protein"]
    verbs = ["increased", "reduced", "was associated with", "did not change", "predicted"]
    objects = ["mortality at 30 days", "the expression of p53", "insulin resistance", "tumour growth in mice"]
    out = []
    for _ in range(n):
        k = rng.randint(3, 6)
        out.append(" ".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} "
                            f"(n = {rng.randint(10, 999)}, p = 0.0{rng.randint(1, 9)})." for _ in range(k)))
    return out


def _bare_store(path) -> Storage:
    s = Storage(path, create=True)
    s.initialize(StoreConfig(fidelity="text"))
    return s


def _insert(storage: Storage, texts: list[str]) -> list[int]:
    tier = tt.for_storage(storage)
    n = len(texts)
    with storage.transaction() as c:
        return storage.insert(
            c, namespace="default", metadata=[{}] * n, codes=np.zeros((n, 32), np.uint8),
            qvecs=np.zeros((n, 384), np.int8), hints=[b"\x90"] * n, gen=0, texts=tier.encode(texts),
        )


def _all_texts(storage: Storage) -> dict[int, str]:
    tier = tt.for_storage(storage)
    return {i: tier.decode(b) for ids, bodies in storage.iter_texts() for i, b in zip(ids, bodies, strict=True)}


@pytest.mark.parametrize("text", TRICKY, ids=lambda t: t[:12])
def test_codec_round_trip_without_and_with_dictionary(tmp_path, text):
    storage = _bare_store(tmp_path / "s.db")
    tier = tt.for_storage(storage)
    assert tier.decode(tier.encode([text])[0]) == text
    _insert(storage, _prose(random.Random(0), 200))
    assert tier.maybe_retrain(force=True)
    assert tier.current_generation() == 1
    body = tier.encode([text])[0]
    assert tier.decode(body) == text
    assert tier.decode(body).encode("utf-8") == text.encode("utf-8")


def test_retrain_adopts_a_dictionary_that_pays_and_recompresses_every_passage(tmp_path):
    storage = _bare_store(tmp_path / "s.db")
    texts = _prose(random.Random(1), 300)
    ids = _insert(storage, texts[:40])
    tier = tt.for_storage(storage)
    assert not tier.retrain_due(storage.count())  # below FIRST_TRAIN
    ids += _insert(storage, texts[40:])
    before = storage.byte_sums()["text"]
    assert tier.retrain_due(storage.count())
    assert tt.maybe_retrain(storage)
    after = storage.byte_sums()["text"]
    assert after < 0.8 * before  # the dictionary pays on similar passages
    assert _all_texts(storage) == dict(zip(ids, texts, strict=True))
    assert not tier.retrain_due(storage.count())  # next try only after 2x growth
    # a second generation replaces the first and drops its dictionary
    ids += _insert(storage, _prose(random.Random(2), 300))
    assert tier.retrain_due(storage.count())
    tt.maybe_retrain(storage)
    gen = tier.current_generation()
    assert storage.get_meta(f"text_dict.{gen}") is not None
    if gen == 2:
        assert storage.get_meta("text_dict.1") is None
    assert len(_all_texts(storage)) == len(ids)


def test_retrain_keeps_the_old_codec_when_a_dictionary_does_not_pay(tmp_path):
    storage = _bare_store(tmp_path / "s.db")
    rng = random.Random(3)
    # short random strings: the bodies are a few bytes each, so a dictionary's own bytes cannot pay
    noise = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(16)) for _ in range(80)]
    _insert(storage, noise)
    tier = tt.for_storage(storage)
    assert not tier.maybe_retrain()
    assert tier.current_generation() == 0
    assert not tier.retrain_due(storage.count())  # the try is recorded: no retraining on every batch


def test_damaged_bodies_raise_store_corrupt_error(tmp_path):
    storage = _bare_store(tmp_path / "s.db")
    tier = tt.for_storage(storage)
    with pytest.raises(StoreCorruptError, match="dictionary 8"):
        tier.decode(b"\x09abc")
    with pytest.raises(StoreCorruptError, match="not UTF-8"):
        tier.decode(b"\x00\xff\xfe")
    with pytest.raises(StoreCorruptError, match="cannot be decompressed"):
        tier.decode(tier.encode(["some text " * 30])[0][:-3])


def test_text_tier_beats_gzip_per_passage_on_similar_passages(tmp_path):
    storage = _bare_store(tmp_path / "s.db")
    texts = _prose(random.Random(4), 400)
    _insert(storage, texts)
    tt.maybe_retrain(storage)
    tier = tt.for_storage(storage)
    assert tier.dictionary_bytes() > 0
    ours = storage.byte_sums()["text"] / len(texts)  # the bodies and the stored dictionary
    gz = sum(len(gzip.compress(t.encode(), 9)) for t in texts) / len(texts)
    assert ours < 0.7 * gz


@pytest.mark.slow
def test_memory_text_tier_round_trips_exactly_and_survives_reopen(tmp_path):
    path = tmp_path / "m.db"
    filler = _prose(random.Random(5), tt.FIRST_TRAIN)
    with Memory(path, fidelity="text") as mem:
        ids = mem.add(TRICKY[:-1])  # the long one is added below, after the dictionary exists
        ids += mem.add(filler)
        assert tt.for_storage(mem.storage).current_generation() >= 1  # the add hook trained one
        ids += mem.add([TRICKY[-1]])
        for i, text in zip(ids, TRICKY[:-1] + filler + [TRICKY[-1]], strict=True):
            assert mem.get(i).text == text
    with Memory(path) as mem:
        assert mem.config.fidelity == "text"
        assert mem.get(ids[1]).text == TRICKY[1]
        assert mem.get(ids[-1]).text == TRICKY[-1]


@pytest.mark.slow
def test_hints_tier_keeps_no_text(tmp_path):
    with Memory(tmp_path / "h.db") as mem:
        (i,) = mem.add(["a passage that is not kept"])
        assert mem.get(i).text is None
        assert mem.storage.byte_sums()["text"] == 0


def test_dictionaries_are_stored_compressed_and_uncompressed_ones_still_read(tmp_path):
    import zstandard

    storage = _bare_store(tmp_path / "s.db")
    texts = _prose(random.Random(5), 300)
    _insert(storage, texts)
    tier = tt.for_storage(storage)
    assert tier.maybe_retrain(force=True)
    gen = tier.current_generation()
    stored = bytes(storage.get_meta(f"text_dict.{gen}"))
    plain = zstandard.ZstdDecompressor().decompress(stored)
    assert len(stored) < len(plain)  # kept as one zstd frame
    assert tier.dictionary_bytes() == len(stored)
    # a store written before dictionaries were compressed keeps the raw dictionary bytes
    with storage.transaction() as c:
        storage.set_meta(c, f"text_dict.{gen}", plain)
    fresh = tt.TextTier(storage)
    assert list(_all_texts(storage).values()) == texts
    assert [fresh.decode(b) for _, bodies in storage.iter_texts() for b in bodies] == texts
