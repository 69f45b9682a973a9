"""The text fidelity tier: byte-exact round trips, dictionary training, recompression."""

from __future__ import annotations

import gzip
import random

import numpy as np
import pytest

from hashmem.memory import Memory, RecordNotFoundError, StoreCorruptError
from hashmem.memory.backends.local.storage import Storage
from hashmem.memory.config import StoreConfig
from hashmem.memory.tiers import text as tt
from hashmem.memory.tiers import trial

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


# -- two processes on one store: two Storage handles on one file (two SQLite connections) -------


def _two_handles(tmp_path, n: int = 200) -> tuple[Storage, Storage, list[int], list[str]]:
    a = _bare_store(tmp_path / "s.db")
    texts = _prose(random.Random(5), n)
    ids = _insert(a, texts)
    return a, Storage(tmp_path / "s.db", create=False), ids, texts


def test_a_body_made_before_another_process_retrained_is_made_again_inside_the_write(tmp_path, monkeypatch):
    """A writer compresses before the write lock; another process adopts a dictionary and drops the old one."""
    monkeypatch.setattr(tt, "MIN_GAIN", -1.0)  # every trained dictionary is adopted
    a, b, ids, texts = _two_handles(tmp_path)
    tier_a, tier_b = tt.for_storage(a), tt.for_storage(b)
    assert tier_a.maybe_retrain(force=True)  # generation 1, known to both
    late = _prose(random.Random(6), 3)
    bodies = tier_b.encode(late)  # b compresses with generation 1, outside the lock ...
    assert {x[0] for x in bodies} == {tt.PLAIN + 1}
    ids += _insert(a, _prose(random.Random(7), 200))
    assert tier_a.maybe_retrain(force=True)  # ... a adopts generation 2 and drops 1 ...
    assert a.get_meta("text_dict.1") is None
    n = len(late)
    with b.transaction() as c:  # ... and b writes: inside the lock its stale bodies are made again
        new = b.insert(c, namespace="default", metadata=[{}] * n, codes=np.zeros((n, 32), np.uint8),
                       qvecs=np.zeros((n, 384), np.int8), hints=[b"\x90"] * n, gen=0,
                       texts=tier_b.current_bodies(late, bodies))
    assert {x[0] for x in b.fetch_texts(new).values()} == {tt.PLAIN + 2}
    for tier in (tier_a, tier_b, tt.TextTier(Storage(tmp_path / "s.db", create=False))):
        got = {i: tier.decode(body) for i, body in a.fetch_texts(new).items()}
        assert got == dict(zip(new, late, strict=True))


def test_a_retraining_that_loses_the_race_writes_nothing(tmp_path, monkeypatch):
    """Two processes train at once: the second to reach the lock drops its dictionary; generation g is one
    dictionary for every process that ever cached it."""
    a, b, ids, texts = _two_handles(tmp_path)
    tier_a, tier_b = tt.for_storage(a), tt.for_storage(b)
    real = tt.TextTier._recompress
    raced = []

    def b_adopts_first(self, d, gen, *, after=-1, **kw):
        if self is tier_a and not raced:  # a has trained; b trains and adopts before a takes the lock
            raced.append(1)
            assert tier_b.maybe_retrain(force=True)
        return real(self, d, gen, after=after, **kw)

    monkeypatch.setattr(tt.TextTier, "_recompress", b_adopts_first)
    assert not tier_a.maybe_retrain(force=True)  # lost: nothing of a's is written
    assert raced and tier_a.current_generation() == tier_b.current_generation() == 1
    stored = a.get_meta("text_dict.1")
    assert bytes(stored) == tier_b._pack_dict(tier_b._dict(1))  # b's dictionary, not overwritten
    expected = dict(zip(ids, texts, strict=True))
    assert _all_texts(a) == _all_texts(b) == expected


def test_rows_added_during_a_retraining_are_recompressed_under_the_lock(tmp_path, monkeypatch):
    a, b, ids, texts = _two_handles(tmp_path)
    tier_a = tt.for_storage(a)
    real = tt.TextTier._recompress
    late = _prose(random.Random(8), 4)
    added = []

    def b_adds_meanwhile(self, d, gen, *, after=-1, **kw):
        out = real(self, d, gen, after=after, **kw)
        if not added:  # after a read every body outside the lock, before a takes it
            added.extend(_insert(b, late))
        return out

    monkeypatch.setattr(tt.TextTier, "_recompress", b_adds_meanwhile)
    assert tier_a.maybe_retrain(force=True)
    assert a.get_meta("text_dict.0") is None
    bodies = a.fetch_texts(ids + added)
    assert {x[0] for x in bodies.values()} <= {tt.RAW, tt.PLAIN + 1}
    assert _all_texts(a) == dict(zip(ids + added, texts + late, strict=True))


def test_get_reads_a_body_again_when_another_process_retrained_since_it_was_read(tmp_path, monkeypatch):
    """A reader read a body, then another process recompressed it and dropped its dictionary."""
    monkeypatch.setattr(tt, "MIN_GAIN", -1.0)
    path = tmp_path / "m.db"
    texts = _prose(random.Random(9), 120)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((len(texts) + 200, 384)).astype(np.float32)
    with Memory(path, fidelity="text", method="sign") as m:
        ids = m.add(texts, embeddings=emb[: len(texts)])
    reader, other = Memory(path), Memory(path)
    try:
        other.add(_prose(random.Random(10), 200), embeddings=emb[len(texts):])
        gen = tt.for_storage(reader.storage).current_generation()
        real = reader.backend.rows
        calls = []

        def fetch_then_retrain(ids_, *fields):
            got = real(ids_, *fields)
            if fields == (("text",),) and not calls:  # the body is read under generation gen; then the
                # other process retrains
                calls.append(1)
                assert tt.for_storage(other.storage).maybe_retrain(force=True)
            return got

        monkeypatch.setattr(reader.backend, "rows", fetch_then_retrain)
        tt.for_storage(reader.storage)._dicts.clear()  # a reader that had not met this dictionary yet
        assert reader.get(ids[5]).text == texts[5]
        assert len(calls) == 1 and tt.for_storage(other.storage).current_generation() == gen + 1
    finally:
        reader.close()
        other.close()


def test_get_of_a_record_deleted_between_its_two_reads_is_not_found_not_textless(tmp_path, monkeypatch):
    path = tmp_path / "m.db"
    emb = np.random.default_rng(1).standard_normal((3, 384)).astype(np.float32)
    with Memory(path, fidelity="text") as m:
        ids = m.add(["one passage", "another passage", "a third"], embeddings=emb)
    reader, other = Memory(path), Memory(path)
    try:
        real = reader.backend.rows

        def delete_first(ids_, *fields):  # the record row was read; another process deletes it
            if fields == (("text",),):  # before its body is
                other.delete(list(ids_))
            return real(ids_, *fields)

        monkeypatch.setattr(reader.backend, "rows", delete_first)
        with pytest.raises(RecordNotFoundError, match=f"no record with id {ids[1]}"):
            reader.get(ids[1])
    finally:
        reader.close()
        other.close()


def test_an_add_whose_dictionary_another_process_drops_while_it_compresses_is_stored(tmp_path, monkeypatch):
    """The add's compression (on a background thread, outside the write lock) read the current generation;
    before it loaded that dictionary, another process adopted a new one and dropped it."""
    monkeypatch.setattr(tt, "MIN_GAIN", -1.0)
    path = tmp_path / "m.db"
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((400, 384)).astype(np.float32)
    with Memory(path, fidelity="text", method="sign") as m:
        m.add(_prose(random.Random(11), 120), embeddings=emb[:120])
    writer, other = Memory(path), Memory(path)
    try:
        other.add(_prose(random.Random(12), 200), embeddings=emb[120:320])  # generation 1 or more, not met by writer
        tier = tt.for_storage(writer.storage)
        tier._dicts.clear()
        gen = tier.current_generation()
        real = tt.TextTier.current_generation
        calls = []

        def read_then_retrain(self):
            got = real(self)
            if self is tier and not calls:  # the add's compression has read the generation: the other retrains
                calls.append(1)
                assert tt.for_storage(other.storage).maybe_retrain(force=True)
            return got

        monkeypatch.setattr(tt.TextTier, "current_generation", read_then_retrain)
        late = _prose(random.Random(13), 40)
        new = writer.add(late, embeddings=emb[320:360])
        assert calls and real(tier) == gen + 1 and writer.storage.get_meta(f"text_dict.{gen}") is None
        assert [writer.get(i).text for i in new] == late
        assert {b[0] for b in writer.storage.fetch_texts(new).values()} <= {tt.RAW, tt.PLAIN + gen + 1}
    finally:
        writer.close()
        other.close()


def test_an_add_to_a_store_whose_current_dictionary_is_missing_fails_in_one_line(tmp_path, monkeypatch):
    """Reading the generation again is for a race: a store that names a dictionary it lacks is damaged."""
    monkeypatch.setattr(tt, "MIN_GAIN", -1.0)
    path = tmp_path / "m.db"
    with Memory(path, fidelity="text", method="sign") as m:
        m.add(_prose(random.Random(14), 80), embeddings=np.random.default_rng(1).standard_normal((80, 384)))
        gen = tt.for_storage(m.storage).current_generation()
        assert gen
        with m.storage.transaction() as c:
            m.storage.delete_meta(c, f"text_dict.{gen}")
    with Memory(path) as m:
        with pytest.raises(StoreCorruptError, match=f"needs text dictionary {gen}, which the store lacks"):
            m.add(["one more passage"], embeddings=np.ones((1, 384), np.float32))
        assert len(m) == 80


def test_a_trial_started_early_is_judged_on_the_store_it_ends_with(tmp_path, monkeypatch):
    """``start_trial`` samples now and trains on a thread; ``maybe_retrain(early=...)`` judges those candidates
    on the grown store (no second training) and recompresses every body, the later ones too."""
    storage = _bare_store(tmp_path / "s.db")
    tier = tt.for_storage(storage)
    texts = _prose(random.Random(11), 300)
    ids = _insert(storage, texts[:200])
    trained = []
    real = trial.train
    monkeypatch.setattr(trial, "train", lambda t, *a, **k: trained.append(a[2]) or real(t, *a, **k))
    early = tier.start_trial(300)
    ids += _insert(storage, texts[200:])  # written while the candidates train
    assert tier.maybe_retrain(force=True, early=early)
    assert len(trained) == 1 and set(trained[0]) <= set(texts[:200])  # the probe: passages stored at the start
    assert tier.current_generation() == 1
    bodies = [b for _, part in storage.iter_texts() for b in part]
    assert bodies == tier.encode(texts)  # every body, as the adopted dictionary makes it now
    assert _all_texts(storage) == dict(zip(ids, texts, strict=True))


def test_an_early_trial_is_dropped_when_another_process_adopted_a_dictionary_meanwhile(tmp_path, monkeypatch):
    monkeypatch.setattr(tt, "MIN_GAIN", -1.0)  # every trained dictionary is adopted
    a, b, ids, texts = _two_handles(tmp_path)
    tier_a, tier_b = tt.for_storage(a), tt.for_storage(b)
    early = tier_a.start_trial(len(ids))  # sampled under generation 0
    assert tier_b.maybe_retrain(force=True)  # b adopts generation 1
    assert early.result().old_gen == 0
    trained = []
    real = trial.train
    monkeypatch.setattr(trial, "train", lambda t, *a, **k: trained.append(a[0]) or real(t, *a, **k))
    assert tier_a.maybe_retrain(force=True, early=early)  # trained again, on generation 1's store
    assert trained == [1] and tier_a.current_generation() == tier_b.current_generation() == 2
    assert _all_texts(a) == _all_texts(b) == dict(zip(ids, texts, strict=True))
