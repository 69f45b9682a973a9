"""Memory end to end with the real embedding model and a real SQLite file."""

import sqlite3

import numpy as np
import pytest

from hashmem.memory import (
    ConfigError,
    Hit,
    InputError,
    Memory,
    ModelLoadError,
    ModelMismatchError,
    Record,
    RecordNotFoundError,
)
from hashmem.memory import refit as refit_mod


def test_add_search_get(mem, passages):
    assert len(mem) == len(passages)
    hits = mem.search("airplane flight with passengers", k=3)
    assert isinstance(hits[0], Hit)
    assert hits[0].id == 1
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "747" in hits[0].hints and "Boeing" in hits[0].hints
    rec = mem.get(1)
    assert isinstance(rec, Record)
    assert rec.code.shape == (mem.config.bits // 8,) and rec.qvec.shape == (mem.config.dim,)
    assert rec.text is None  # the hints tier keeps no text
    assert rec.metadata == {"n": 0, "kind": "even"}


def test_search_modes_agree_on_the_obvious_answer(mem):
    for mode in ("binary+int8", "int8", "binary"):
        assert mem.search("Nobel Prize physics chemistry", k=1, mode=mode)[0].id == 6


def test_scores_match_float_cosine(mem, passages):
    q = mem.embedder.encode(["photosynthesis and light"])
    floats = mem.embedder.encode(passages)
    hits = mem.search_embeddings(q, k=len(passages), mode="int8")[0]
    exact = {i + 1: float(s) for i, s in enumerate(floats @ q[0])}
    for h in hits:
        assert abs(h.score - exact[h.id]) < 0.02


def test_namespaces_are_hard_partitions(mem):
    ids = mem.add(["Boeing 747 jumbo jet airliner."], namespace="other")
    hits = mem.search("Boeing 747", k=20, namespace="other")
    assert [h.id for h in hits] == ids
    assert all(h.namespace == "default" for h in mem.search("Boeing 747", k=20))
    assert mem.search("anything", namespace="does-not-exist") == []
    assert mem.namespaces() == {"default": 8, "other": 1}


def test_where_filter(mem):
    hits = mem.search("science", k=10, where={"kind": "odd"})
    assert hits and all(h.metadata["kind"] == "odd" for h in hits)
    assert mem.search("science", where={"kind": "none"}) == []
    assert mem.search("science", k=10, where={"n": 4})[0].id == 5


def test_delete_and_len(mem):
    assert mem.delete([1, 2, 999]) == 2
    assert len(mem) == 6
    assert all(h.id not in (1, 2) for h in mem.search("Boeing 747 aerodynamic", k=10))
    with pytest.raises(RecordNotFoundError, match="no record with id 1"):
        mem.get(1)


def test_reopen_keeps_everything(store_path, passages):
    with Memory(store_path) as m:
        m.add(passages)
        before = [(h.id, round(h.score, 5)) for h in m.search("library budget", k=5)]
    with Memory(store_path) as m:
        assert len(m) == len(passages)
        assert [(h.id, round(h.score, 5)) for h in m.search("library budget", k=5)] == before
        assert m.add(["one more"]) == [len(passages) + 1]


def test_ids_never_reused(store_path):
    with Memory(store_path) as m:
        a = m.add(["first passage", "second passage"])
        m.delete(a)
        assert m.add(["third passage"]) == [3]


def test_stats(mem):
    s = mem.stats()
    assert s.records == 8
    per = s.bytes_per_passage
    assert per["code"] == mem.config.bits / 8
    assert per["qvec"] == mem.config.dim
    assert 0 < per["hints"] <= mem.config.hint_bytes
    assert per["file"] > 0 and s.file_bytes > 0


def test_add_documents_chunks_with_offsets(store_path):
    doc = "First sentence here. " * 50 + "The last one mentions Zanzibar."
    with Memory(store_path) as m:
        ids = m.add_documents([doc], metadata={"source": "doc.txt"}, passage_tokens=32)
        assert len(ids) > 3
        rec = m.get(ids[-1])
        assert rec.metadata["source"] == "doc.txt"
        assert doc[rec.metadata["start"] : rec.metadata["end"]].endswith("Zanzibar.")


@pytest.mark.parametrize(
    "texts,match",
    [
        ([""], "text 0 is empty"),
        (["ok", "   \n"], "text 1 is empty"),
        (["bad\x00text"], "NUL character"),
        ([b"bytes"], "not str"),
        ("a string", "list of texts"),
    ],
)
def test_bad_texts_write_nothing(mem, texts, match):
    with pytest.raises(InputError, match=match):
        mem.add(texts)
    assert len(mem) == 8


def test_bad_metadata(mem):
    with pytest.raises(InputError, match="2 metadata dicts for 1 texts"):
        mem.add(["x"], metadata=[{}, {}])
    with pytest.raises(InputError, match="not JSON-serializable"):
        mem.add(["x"], metadata={"when": object()})


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k(mem, k):
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        mem.search("x", k=k)


def test_empty_query(mem):
    with pytest.raises(InputError, match="query is empty"):
        mem.search("   ")


def test_settings_fixed_at_creation(mem, store_path):
    mem.close()
    with pytest.raises(ConfigError, match="bits=256, fixed at creation"):
        Memory(store_path, bits=128)
    with pytest.raises(ModelMismatchError, match="was built with model 'all-MiniLM-L6-v2', not 'other-model'"):
        Memory(store_path, model="other-model")


def test_model_fingerprint_mismatch_is_refused(mem, store_path):
    """A store whose recorded probe embedding differs (another model under the same name) is refused."""
    mem.close()
    conn = sqlite3.connect(store_path)
    import json

    cfg = json.loads(conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
    cfg["fingerprint"]["probe"] = list(-np.asarray(cfg["fingerprint"]["probe"]))
    cfg["fingerprint"]["probe_sha"] = "0000"
    conn.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(cfg),))
    conn.commit()
    conn.close()
    m = Memory(store_path)
    with pytest.raises(ModelMismatchError, match="it is another model"):
        m.search("anything")
    m.close()


def test_unknown_model(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot load embedding model 'no-such/model-xyz' offline"):
        Memory(tmp_path / "s.db", model="no-such/model-xyz")
    assert not (tmp_path / "s.db").exists() or (tmp_path / "s.db").stat().st_size == 0


@pytest.mark.parametrize("bits,match", [(100, "multiple of 8"), (512, "above the limit of 384")])
def test_bad_bits_at_creation(tmp_path, bits, match):
    with pytest.raises(ConfigError, match=match):
        Memory(tmp_path / "s.db", bits=bits)


def test_refit_reencodes_all_codes_in_one_generation(store_path, monkeypatch):
    """Learned codes without floats: refits read the int8 vectors and never mix generations."""
    monkeypatch.setattr(refit_mod, "FIRST_FIT", 40)
    rng = np.random.default_rng(0)
    with Memory(store_path, bits=32, batch_size=16) as m:
        words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
        texts = [" ".join(rng.choice(words, 6)) + f" item {i}" for i in range(50)]
        m.add(texts)
        assert m.hasher.generation >= 1 and m.hasher.fitted_on >= 40
        gens = {int(g) for *_, batch in m.storage.iter_codes() for g in batch}
        assert gens == {m.hasher.generation} and m.storage.get_meta("code_generation") == str(m.hasher.generation)
        # every stored code equals the current hasher applied to the stored int8 vector
        for ids, qvecs in m.storage.iter_qvecs(m.config.dim):
            expect = m.hasher.encode(m.quantizer.decode(qvecs))
            rows = m.storage.fetch(ids.tolist())
            got = np.stack([np.frombuffer(rows[int(i)].code, np.uint8) for i in ids])
            assert np.array_equal(got, expect)
        top = m.search(texts[7], k=1)[0]
        assert top.id == 8


def test_mixed_generations_fail_the_integrity_check(mem, store_path):
    from hashmem.memory import StoreCorruptError

    mem.close()
    conn = sqlite3.connect(store_path)
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'code_generation'")  # format 3: one per store
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorruptError, match="another hashing fit"):
        Memory(store_path)


def test_given_embeddings_are_used(store_path, passages):
    with Memory(store_path) as m:
        emb = m.embedder.encode(passages)
        ids = m.add(passages, embeddings=emb)
        assert m.search_embeddings(emb[2:3], k=1)[0][0].id == ids[2]
        with pytest.raises(InputError, match="embeddings must have shape"):
            m.add(["x"], embeddings=np.zeros((1, 5), np.float32))
