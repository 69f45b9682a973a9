"""memory/fusion.py and ``Memory.search(mode="hybrid")`` with the real embedder, on hints and text stores."""

from __future__ import annotations

import numpy as np
import pytest

from hashmem.memory import Memory, fusion, lexical
from hashmem.memory.errors import ConfigError, InputError
from hashmem.memory.search import Candidates

DOCS = [
    "The Zorblax turbine spins at 4000 rpm in the Quenby test rig.",
    "Boundary layer separation on a swept wing at high angle of attack.",
    "Heat transfer in laminar flow over a flat plate.",
    "A survey of supersonic inlet design for fighter aircraft.",
    "The shock wave ahead of a blunt body in hypersonic flow.",
    "Vortex shedding behind a circular cylinder at low Reynolds number.",
]


@pytest.fixture(scope="module", params=["hints", "text"])
def store(request, tmp_path_factory):
    m = Memory(tmp_path_factory.mktemp(request.param) / "s.db", fidelity=request.param)
    m.add(DOCS)
    yield m
    m.close()


@pytest.mark.slow
def test_hybrid_terms_are_the_hints_or_the_exact_words(store):
    ids = np.array(store.ids(), dtype=np.int64)
    cands = Candidates(ids, np.zeros(len(ids), np.uint32))
    got = fusion.hybrid_for(store, ["zorblax"], 0.3).passages(cands)
    hints = fusion.hint_terms(store, cands)
    assert "zorblax" in got[0] and "zorblax" in hints[0]
    if store.config.fidelity == "text":
        assert got == [lexical.terms(t) for t in DOCS]  # every word, not just the hints
    else:
        assert got == hints


@pytest.mark.slow
def test_hybrid_search_finds_the_rare_word_and_weight_zero_keeps_binary_int8_order(store):
    plain = store.search("Zorblax", 6, mode="binary+int8")
    hyb = store.search("Zorblax", 6, mode="hybrid", lexical_weight=0.5)
    assert hyb[0].id == store.ids()[0] and hyb[0].score == pytest.approx(1.0, abs=0.5)
    assert all(0.0 <= h.score <= 1.0 for h in hyb)
    zero = store.search("Zorblax", 6, mode="hybrid", lexical_weight=0.0)
    assert [h.id for h in zero] == [h.id for h in plain]
    assert store.search("Zorblax", 6) == store.search("Zorblax", 6, mode="hybrid")  # hybrid is the default
    q = store.embedder.encode(["Zorblax"])
    assert store.search_embeddings(q, 6)[0] == plain  # by embeddings alone: no words, so binary+int8
    assert store.search_embeddings(q, 6, query_texts=["Zorblax"])[0] == store.search("Zorblax", 6)


@pytest.mark.slow
def test_hybrid_errors(store):
    q = store.embedder.encode(["wing"])
    with pytest.raises(InputError, match="give query_texts"):
        store.search_embeddings(q, 3, mode="hybrid")
    with pytest.raises(ConfigError, match=r"lexical_weight must be a number in \[0, 1\]"):
        store.search("wing", 3, mode="hybrid", lexical_weight=1.5)
    with pytest.raises(ConfigError, match="not supported"):
        store.search("wing", 3, mode="bm25")


def test_default_weights_per_fidelity():
    assert fusion.check_hybrid("hybrid", None, ["q"], 1, "text") == fusion.DEFAULT_LEXICAL_WEIGHT["text"]
    assert fusion.check_hybrid("hybrid", None, ["q"], 1, "hints") == fusion.DEFAULT_LEXICAL_WEIGHT["hints"]
    assert fusion.check_hybrid("binary+int8", None, None, 1, "hints") == 0.0


def test_blend_groups_normalizes_each_kind_alone_with_its_own_share():
    dense = np.array([0.9, 0.5, 0.1, 0.7], np.float32)
    bm25 = np.array([12.0, 6.0, 1.0, 0.5], np.float32)  # exact words score far above hint terms
    exact = np.array([True, True, False, False])
    got = lexical.blend_groups(dense, bm25, exact, 0.4, 0.15)
    d = lexical.minmax(dense)
    want = [0.6 * d[0] + 0.4 * 1.0, 0.6 * d[1] + 0.4 * 0.0, 0.85 * d[2] + 0.15 * 1.0, 0.85 * d[3] + 0.15 * 0.0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    same = lexical.blend_groups(dense, bm25, np.ones(4, bool), 0.4, 0.15)
    np.testing.assert_allclose(same, lexical.blend(dense, bm25, 0.4), rtol=1e-6)  # one kind: the plain blend
