"""What every storage backend must do, checked through ``Memory`` with the real embedder.

``tests/test_backend.py`` runs these over the local backend (SQLite + in-RAM index),
``tests/test_milvus_backend.py`` over a real Milvus server. Each check takes
``open_mem(**kw)``, a callable that opens (and creates on first use) one fresh store;
``BackendContract`` turns them into tests for a module that provides that fixture.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PASSAGES

from hashmem.memory import AddIncompleteError, RecordNotFoundError, StoreError, hashing
from hashmem.memory.backends.base import Backend

META = [{"n": i, "kind": "even" if i % 2 == 0 else "odd", "flag": i == 3} for i in range(len(PASSAGES))]


def filled(open_mem, **kw):
    mem = open_mem(**kw)
    ids = mem.add(PASSAGES, metadata=META)
    return mem, ids


def check_add_search_get(open_mem) -> None:
    mem, ids = filled(open_mem)
    try:
        assert isinstance(mem.backend, Backend)
        assert len(ids) == len(PASSAGES) and len(set(ids)) == len(ids) and ids == sorted(ids)
        assert len(mem) == len(PASSAGES)
        hits = mem.search("Who won the Nobel Prize twice?", k=3)
        assert hits[0].id == ids[5]
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert "Curie" in hits[0].hints and hits[0].metadata == META[5]
        hybrid = mem.search("Curie", k=3, mode="hybrid", lexical_weight=0.5)  # the word, through this backend's rows
        assert hybrid[0].id == ids[5] and all(0.0 <= h.score <= 1.0 for h in hybrid)
        plain = mem.search("Who won the Nobel Prize twice?", k=3)
        zero = mem.search("Who won the Nobel Prize twice?", k=3, mode="hybrid", lexical_weight=0.0)
        assert [h.id for h in zero] == [h.id for h in plain]  # no lexical share: the binary+int8 order
        r = mem.get(ids[0])
        assert r.code.shape == (mem.config.bits // 8,) and r.code.dtype == np.uint8
        assert r.qvec.shape == (mem.config.dim,) and r.qvec.dtype == np.int8
        assert "1998" in r.hints and r.metadata == META[0] and r.namespace == "default"
        binary = mem.search("Who won the Nobel Prize twice?", k=3, mode="binary")
        exact = mem.search("Who won the Nobel Prize twice?", k=3, mode="int8")
        assert binary[0].id == exact[0].id == ids[5]
        assert mem.ids() == ids
    finally:
        mem.close()


def check_hamming_stage_matches_brute_force(open_mem) -> None:
    """``Backend.candidates``: the exact Hamming top-n of the stored codes (tie-aware), with their codes."""
    mem, ids = filled(open_mem)
    try:
        codes = np.stack([mem.get(i).code for i in ids])
        q = mem.hasher.encode(mem.embedder.encode(["a plane from London"]))[0]
        truth = hashing.hamming(q, codes)
        got = mem.backend.candidates("default", q, 4, generation=mem.hasher.generation)
        got_ids, got_ham = got.ids, got.hamming
        assert len(got_ids) == 4
        by_id = dict(zip(ids, truth.tolist(), strict=True))
        assert [by_id[int(i)] for i in got_ids] == got_ham.tolist()  # distances are the true ones
        assert got_ham.tolist() == sorted(truth.tolist())[:4]  # and the smallest (ties may swap ids)
        allowed = [ids[1], ids[6]]
        by_pos = {int(i): j for j, i in enumerate(ids)}
        if got.codes is not None:  # what the engine gave back with the ids is the stored codes
            np.testing.assert_array_equal(got.codes, codes[[by_pos[int(i)] for i in got_ids]])
        if got.hints is not None:  # ... and the stored hints
            assert list(got.hints) == list(mem.backend.rows(got_ids.tolist(), ("hints",))["hints"])
        only = mem.backend.candidates("default", q, 4, generation=mem.hasher.generation, allowed_ids=allowed)
        assert sorted(only.ids.tolist()) == allowed
        assert len(mem.backend.candidates("nowhere", q, 4, generation=mem.hasher.generation)) == 0
        rows = mem.backend.rows([ids[1], 10**15, ids[0]], ("code", "qvec"))  # asked order; missing left out
        assert rows.ids.tolist() == [ids[1], ids[0]]
        np.testing.assert_array_equal(rows.array("code", np.uint8), codes[[1, 0]])
        np.testing.assert_array_equal(rows.array("qvec", np.int8), np.stack([mem.get(ids[1]).qvec, mem.get(ids[0]).qvec]))
        asked = [ids[2], 10**15, ids[0], -1]  # the hits' read (a narrower query on the local backend)
        listing, full = mem.backend.rows(asked, ("namespace", "metadata", "hints")), mem.backend.rows(asked)
        assert listing.ids.tolist() == full.ids.tolist() == [ids[2], ids[0]]
        for field in ("namespace", "metadata", "hints"):
            assert list(listing[field]) == list(full[field]), field
        assert listing["metadata"][1] == META[0]
    finally:
        mem.close()


def check_namespaces_and_where(open_mem) -> None:
    mem, ids = filled(open_mem)
    try:
        other = mem.add(["Marie Curie discovered polonium and radium."], namespace="user:ana", metadata={"n": 1})
        assert mem.namespaces() == {"default": len(PASSAGES), "user:ana": 1}
        assert [h.id for h in mem.search("Marie Curie", k=5, namespace="user:ana")] == other
        assert other[0] not in [h.id for h in mem.search("Marie Curie", k=20)]
        assert mem.search("Marie Curie", k=5, namespace="nobody") == []
        odd = mem.search("anything at all", k=20, where={"kind": "odd"})
        assert sorted(h.id for h in odd) == [ids[i] for i in range(1, len(PASSAGES), 2)]
        assert mem.find_ids({"n": 3}) == [ids[3]] and mem.find_ids({"n": 3.0}) == [ids[3]]
        assert mem.find_ids({"flag": True}) == [ids[3]]
        assert mem.find_ids({"n": True}) == []  # true is not 1
        assert mem.find_ids({"n": "3"}) == []  # "3" is not 3
        assert mem.find_ids({"n": np.float64(3.0)}) == [ids[3]]  # a float subclass is a float
        assert mem.search("Curie", k=5, where={"kind": "none"}) == []
    finally:
        mem.close()


def check_delete(open_mem) -> None:
    mem, ids = filled(open_mem)
    try:
        assert mem.delete([ids[5], ids[5], 10**15]) == 1
        assert len(mem) == len(PASSAGES) - 1
        with pytest.raises(RecordNotFoundError):
            mem.get(ids[5])
        assert ids[5] not in [h.id for h in mem.search("Who won the Nobel Prize twice?", k=10)]
        assert mem.namespaces() == {"default": len(PASSAGES) - 1}
    finally:
        mem.close()


def check_second_handle_sees_the_same_memory(open_mem) -> None:
    """Settings, hasher, calibration and lexicon live in the backend: another handle gets the same memory."""
    mem, ids = filled(open_mem)
    try:
        first = [(h.id, h.score, h.hints) for h in mem.search("a budget for a library", k=4)]
        other = open_mem()
        try:
            assert other.config == mem.config
            assert other.state.hasher_raw == mem.state.hasher_raw
            assert other.quantizer.to_bytes() == mem.quantizer.to_bytes()
            assert [(h.id, h.score, h.hints) for h in other.search("a budget for a library", k=4)] == first
            assert other.lexicon.terms == mem.lexicon.terms
            new = other.add(["The library in Boston opened its doors in 2001."])  # written by the second handle
            assert mem.search("library opened in Boston", k=1)[0].id == new[0]  # seen by the first
            assert mem.get(new[0]).hints == other.get(new[0]).hints
        finally:
            other.close()
    finally:
        mem.close()


def check_refit_generation(open_mem) -> None:
    """A refit re-encodes every code under a new generation; searches use only that generation."""
    mem, ids = filled(open_mem, method="sign")  # sign: refits on any 2+ passages (itq needs n >= bits)
    try:
        gen = mem.hasher.generation
        before = mem.search("Nobel Prize in Physics", k=1)[0].id
        mem.refit()
        assert mem.hasher.generation == gen + 1
        for i in ids:
            r = mem.get(i)
            np.testing.assert_array_equal(r.code, mem.hasher.encode(mem.quantizer.decode(r.qvec[None, :]))[0])
        assert mem.search("Nobel Prize in Physics", k=1)[0].id == before
        found = mem.backend.candidates("default", mem.get(ids[0]).code, 20, generation=gen)
        assert len(found) == 0  # no code of the old generation is left to mix in
        other = open_mem()
        try:
            assert other.hasher.generation == gen + 1
            assert other.search("Nobel Prize in Physics", k=1)[0].id == before
        finally:
            other.close()
    finally:
        mem.close()


def check_failed_add_reports_ids(open_mem, monkeypatch) -> None:
    """A write failing mid-add: the ids stored before are reported and present, the rest absent."""
    mem = open_mem(batch_size=3)
    try:
        real = type(mem.backend).insert
        calls = {"n": 0}

        def flaky(self, txn, **kw):
            calls["n"] += 1
            if calls["n"] == 2:
                raise StoreError("the engine went away")
            return real(self, txn, **kw)

        monkeypatch.setattr(type(mem.backend), "insert", flaky)
        with pytest.raises(AddIncompleteError, match="the engine went away; 3 passage") as err:
            mem.add(PASSAGES)
        assert len(err.value.stored_ids) == 3 and err.value.failed == 3
        assert "\n" not in str(err.value)
        monkeypatch.setattr(type(mem.backend), "insert", real)
        assert sorted(mem.ids()) == sorted(err.value.stored_ids)
    finally:
        mem.close()


TEXT_EXTRA = "Ünïcode  café — 日本語\n\n\ttabs,  double  spaces; x = f(3) ** 2  "


def check_text_bodies(open_mem) -> None:
    """A ``text``-fidelity store gives back every passage byte-exact: ``get``, recall, ``ask``, a second
    handle, and after the zstd dictionary is re-trained (every body rewritten)."""
    import zstandard

    from hashmem.decoders import ExtractiveDecoder
    from hashmem.memory.tiers import text as texttier

    texts = PASSAGES + [TEXT_EXTRA]
    mem = open_mem(fidelity="text")
    ids = mem.add(texts, metadata=META + [{}])
    assert [mem.get(i).text for i in ids] == texts
    dec = ExtractiveDecoder(mem)
    r = dec.reconstruct(ids[5])
    assert r.exact and r.text == texts[5]
    q = "When did Marie Curie win the Nobel Prize in Chemistry?"
    a = dec.ask(q, mem.search(q, 3))
    assert a.found and a.citations == [ids[5]] and "1911" in a.text
    assert mem.stats().bytes_per_passage["text"] > 0

    tier = texttier.for_storage(mem.backend.body_store())
    before = dict(zip(ids, mem.backend.rows(ids, ("text",))["text"], strict=True))
    trained = zstandard.train_dictionary(2048, [t.encode() for t in texts] * 40, level=texttier.LEVEL)
    tier._adopt(trained, tier.current_generation(), len(ids))  # what maybe_retrain does when a dictionary pays
    after = dict(zip(ids, mem.backend.rows(ids, ("text",))["text"], strict=True))
    assert tier.current_generation() == 1
    assert any(after[i] != before[i] for i in ids)  # bodies were rewritten under the new dictionary
    assert [mem.get(i).text for i in ids] == texts

    other = open_mem()  # a second handle on the same store
    assert other.config.fidelity == "text"
    assert [other.get(i).text for i in ids] == texts


def check_compact(open_mem) -> None:
    """A byte budget: where the backend demotes bodies (``BodyDemotion``), ``compact`` over a namespace
    drops every body there when the budget cannot be met, searches keep their ids and scores, recall
    rebuilds (not exact), a second handle sees it; elsewhere a one-line ConfigError, nothing changed."""
    from hashmem.decoders import ExtractiveDecoder
    from hashmem.memory import ConfigError
    from hashmem.memory.backends.base import BodyDemotion

    mem = open_mem(fidelity="text")
    ids = mem.add(PASSAGES, metadata=META)
    (note,) = mem.add(["A note about the river Thames and its bridges."], namespace="notes")
    q = "Who won the Nobel Prize twice?"
    before = [(h.id, h.score, h.hamming) for h in mem.search(q, 5, mode="binary+int8")]  # codes and vectors
    assert mem.stats().fidelities == {"text": len(ids) + 1, "hints": 0}
    if not isinstance(mem.backend, BodyDemotion):
        with pytest.raises(ConfigError, match="cannot demote bodies"):
            mem.compact(1)
        with pytest.raises(ConfigError, match="cannot demote bodies"):
            mem.set_byte_budget(10**6)
        assert [mem.get(i).text for i in ids] == PASSAGES and mem.byte_budget is None
        return
    done = mem.compact(1, namespace="default")
    assert done.demoted == len(ids) and done.exact == 0 and not done.met
    assert [(h.id, h.score, h.hamming) for h in mem.search(q, 5, mode="binary+int8")] == before
    assert all(0.0 <= h.score <= 1.0 for h in mem.search(q, 5))  # hybrid: the demoted passages' hint terms
    assert all(mem.get(i).text is None for i in ids) and mem.get(note).text.startswith("A note about")
    r = ExtractiveDecoder(mem).reconstruct(ids[5])
    assert not r.exact and r.text
    assert mem.stats().fidelities == {"text": 1, "hints": len(ids)}
    assert open_mem().get(ids[0]).text is None  # a second handle


REPLACED = "Marie Curie of Warsaw won the Nobel Prize in Physics in 1903 and in Chemistry in 1911."


def check_replace(open_mem) -> None:
    """``dedup="replace"`` through ``Backend.rewrite``: the id stays with the new text, metadata, hints and
    vector; a search finds it by its new words; a second handle sees the same; a missing id is left alone."""
    mem = open_mem(fidelity="text")
    try:
        ids = mem.add(PASSAGES, metadata=META)
        before = mem.get(ids[5])
        r = mem.remember([REPLACED], metadata={"v": 2}, dedup="replace")
        assert r.ids == [ids[5]] and r.matches[0].id == ids[5] and r.added == []
        after = mem.get(ids[5])
        assert after.text == REPLACED and after.metadata == {"v": 2} and "Warsaw" in after.hints
        assert after.created == before.created and not np.array_equal(after.qvec, before.qvec)
        assert sorted(mem.ids()) == sorted(ids)
        hit = mem.search("Curie of Warsaw", k=1)[0]
        assert hit.id == ids[5] and hit.metadata == {"v": 2}
        codes = mem.backend.rows([ids[5]], ("code",)).array("code", np.uint8)
        with mem.backend.transaction() as c:  # an id that does not exist: nothing written
            mem.backend.rewrite(c, [10**15], metadata=[{}], codes=codes, qvecs=after.qvec[None, :],
                                hints=[b"\x90"], gen=mem.hasher.generation, texts=mem._text_tier().encode(["x"]))
        assert len(mem.backend.rows([10**15], ("namespace",))) == 0
        other = open_mem()
        try:
            again = other.get(ids[5])
            assert again.text == REPLACED and again.metadata == {"v": 2}
            np.testing.assert_array_equal(again.code, after.code)
            assert other.search("Curie of Warsaw", k=1)[0].id == ids[5]
        finally:
            other.close()
    finally:
        mem.close()


class BackendContract:
    """The checks as tests: ``class TestX(BackendContract)`` in a module with an ``open_mem`` fixture."""

    def test_add_search_get(self, open_mem):
        check_add_search_get(open_mem)

    def test_hamming_stage_matches_brute_force(self, open_mem):
        check_hamming_stage_matches_brute_force(open_mem)

    def test_namespaces_and_where(self, open_mem):
        check_namespaces_and_where(open_mem)

    def test_delete(self, open_mem):
        check_delete(open_mem)

    def test_second_handle_sees_the_same_memory(self, open_mem):
        check_second_handle_sees_the_same_memory(open_mem)

    def test_refit_generation(self, open_mem):
        check_refit_generation(open_mem)

    def test_text_bodies(self, open_mem):
        check_text_bodies(open_mem)

    def test_failed_add_reports_ids(self, open_mem, monkeypatch):
        check_failed_add_reports_ids(open_mem, monkeypatch)

    def test_compact(self, open_mem):
        check_compact(open_mem)

    def test_replace(self, open_mem):
        check_replace(open_mem)
