"""memory/lexical.py: BM25 known answers on tiny term lists, the shared tokenizer, the blend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hashmem.memory import hints, lexical


def test_terms_are_the_hint_tokenizer_keys_lowercased():
    text = "In 1998 Dr. Smith measured the Boundary layer; boundary effects were 25% larger."
    assert lexical.terms(text) == [t.key.lower() for t in hints.tokenize(text)]
    assert lexical.terms(text).count("boundary") == 2  # the name-cased and the plain form meet
    assert "1998" in lexical.terms(text) and "the" not in lexical.terms(text)


@pytest.mark.parametrize("text", [
    "In 1998 Dr. Smith measured the Boundary layer; boundary effects were 25% larger.",
    "Vitamin D and type B cells. D is rare. A test, I think, of X-ray doses: 3.5 mg/kg on 12/03.",
    "", "the of and", "Ünïcödé Wörter und 中 文 ÉCOLE " + "x" * 45 + " ok",
    "Supersonic inlet design for fighter aircraft. Shock-wave/boundary-layer interaction at Mach 2.",
])
def test_keys_are_tokenize_keys_lowercased(text):
    assert hints.keys(text) == [t.key.lower() for t in hints.tokenize(text)]


def test_hint_terms_of_decoded_strings():
    assert lexical.hint_terms(["1998", "Smith", "boundary", "layer"]) == ["1998", "smith", "boundary", "layer"]
    assert lexical.hint_terms([]) == []


def test_document_frequencies_take_the_largest_case_variant_and_one_for_unknown_terms():
    lex = hints.Lexicon()
    lex.observe([{"Smith", "flow"}, {"smith"}, {"Smith"}, {"flow"}])
    assert lexical.document_frequencies(lex, ["smith", "flow", "1998"]) == {"smith": 2, "flow": 2, "1998": 1}


def test_bm25_known_answer():
    docs = [["wing", "flow", "wing"], ["flow"], ["heat"]]
    w = lexical.idf({"wing": 1, "flow": 2}, 3)
    assert w["wing"] == pytest.approx(math.log(1 + 2.5 / 1.5)) and w["flow"] == pytest.approx(math.log(1 + 1.5 / 2.5))
    got = lexical.bm25(["wing", "flow", "wing"], docs, w, k1=0.9, b=0.4)
    avgdl = 5 / 3

    def part(tf, dl, t):
        return w[t] * tf * 1.9 / (tf + 0.9 * (0.6 + 0.4 * dl / avgdl))

    assert got[0] == pytest.approx(part(2, 3, "wing") + part(1, 3, "flow"), rel=1e-6)  # query terms count once
    assert got[1] == pytest.approx(part(1, 1, "flow"), rel=1e-6)
    assert got[2] == 0.0 and got.dtype == np.float32


def test_bm25_edge_inputs():
    assert lexical.bm25(["a"], [], {"a": 1.0}).shape == (0,)
    assert lexical.bm25([], [["a"]], {"a": 1.0}).tolist() == [0.0]
    assert lexical.bm25(["zz"], [["a"], []], {}).tolist() == [0.0, 0.0]  # an empty passage: no division by zero


def test_postings_score_a_whole_corpus_like_bm25_on_it():
    docs = [["wing", "flow"], ["flow", "flow", "heat"], [], ["wing"]]
    w = lexical.idf({"wing": 2, "flow": 2, "heat": 1}, 4)
    index, lengths = lexical.postings(docs)
    assert lengths.tolist() == [2, 3, 0, 1]
    assert np.allclose(lexical.bm25_scores(["flow", "heat"], index, lengths, w),
                       lexical.bm25(["flow", "heat"], docs, w))


def test_blend_is_convex_over_min_max_scores():
    dense, lex = np.array([0.9, 0.5, 0.7], np.float32), np.array([0.0, 4.0, 2.0], np.float32)
    assert lexical.blend(dense, lex, 0.0).tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert lexical.blend(dense, lex, 1.0).tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert lexical.blend(dense, lex, 0.25).tolist() == pytest.approx([0.75, 0.25, 0.5])
    assert lexical.blend(dense, np.zeros(3), 0.5).tolist() == pytest.approx([0.5, 0.0, 0.25])  # flat: zeros
    assert lexical.blend(np.zeros(0), np.zeros(0), 0.3).shape == (0,)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_blend_refuses_a_weight_outside_zero_one(weight):
    with pytest.raises(ValueError, match=r"lexical weight must be in \[0, 1\]"):
        lexical.blend(np.ones(2), np.ones(2), weight)
