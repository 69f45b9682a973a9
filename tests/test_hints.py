import msgpack
import pytest

from hashmem.memory import hints

TEXT = (
    "On 12 March 1998 the Boeing 747 operated by Qantas left Sydney with 416 passengers "
    "and a cargo of 3.5 tonnes; the aerodynamic flutter of the tailplane was reported."
)


def _lexicon(*docs):
    lex = hints.Lexicon()
    lex.observe(hints.terms_of(hints.tokenize(d)) for d in docs)
    return lex


@pytest.mark.parametrize("budget", [0, 8, 16, 32, 48, 64, 200])
def test_encoded_size_within_budget(budget):
    lex = _lexicon(TEXT, "a plain sentence about the weather")
    blob = hints.encode(hints.tokenize(TEXT), lex, budget=max(budget, 1))
    assert len(blob) <= max(budget, 1)


def test_names_then_words_then_numbers_in_passage_order():
    lex = _lexicon(TEXT, "another text about the tailplane")
    got = hints.decode(hints.encode(hints.tokenize(TEXT), lex, budget=13), lex)  # 12 one-byte ids and the header
    for must in ["Boeing", "Qantas", "Sydney", "March", "passengers", "flutter"]:
        assert must in got
    assert "tailplane" not in got  # the one word another passage holds: the lowest IDF, left out
    assert not any(t[0].isdecimal() for t in got)  # no number while a word is left out
    positions = [TEXT.index(t) for t in got]
    assert positions == sorted(positions)
    roomy = hints.decode(hints.encode(hints.tokenize(TEXT), lex, budget=200), lex)
    for must in ["12", "1998", "747", "416", "3.5", "tailplane"]:  # numbers fill the bytes the words leave
        assert must in roomy


def test_numbers_come_after_every_word():
    lex = _lexicon("the 1998 flutter report", *["the report"] * 30)
    toks = hints.tokenize("the 1998 flutter report")
    assert hints.decode(hints.encode(toks, lex, budget=2), lex) == ["flutter"]  # the rarer word; ids 1 B each
    assert hints.decode(hints.encode(toks, lex, budget=7), lex) == ["flutter", "report"]  # "1998" takes 5 B
    assert hints.decode(hints.encode(toks, lex, budget=8), lex) == ["1998", "flutter", "report"]


def test_idf_prefers_rare_words():
    common = "the aircraft flew"
    lex = _lexicon(TEXT, *[common] * 20)
    got = hints.decode(hints.encode(hints.tokenize("aircraft flutter"), lex, budget=2), lex)
    assert got == ["flutter"]


def test_encoding_is_msgpack_ids_and_literals():
    lex = _lexicon(TEXT)
    items = msgpack.unpackb(hints.encode(hints.tokenize(TEXT), lex, budget=48))
    assert all(isinstance(i, int | str) for i in items)
    assert any(isinstance(i, str) for i in items)  # numbers stay literal
    assert any(isinstance(i, int) for i in items)  # words go through the lexicon


def test_unicode_names_and_stopwords():
    text = "Yesterday Ångström met Zoë in Zürich and they were happy."
    toks = hints.tokenize(text)
    keys = [t.key for t in toks]
    assert "Ångström" in keys and "Zoë" in keys and "Zürich" in keys
    assert "and" not in keys and "they" not in keys


def test_decode_empty():
    assert hints.decode(b"", hints.Lexicon()) == []
    assert hints.decode(msgpack.packb([]), hints.Lexicon()) == []


def test_decode_many_matches_decode_one_by_one():
    lex = _lexicon(TEXT, "We met Ana yesterday.")
    blobs = [hints.encode(hints.tokenize(t), lex, budget=48) for t in (TEXT, "We met Ana yesterday.", "")]
    assert hints.decode_many(blobs, lex) == [hints.decode(b, lex) for b in blobs]
    assert hints.decode_many(blobs, lex)[0] and hints.decode_many(blobs, lex)[2] == []


@pytest.mark.parametrize("items", [[-1], [0, -3], [1.0], [None], [True], [b"x"], {"a": 1}, 7, [[0]], [99]])
def test_decode_of_a_damaged_blob_names_the_damage(items):
    from hashmem.memory.errors import StoreCorruptError

    lex = _lexicon(TEXT)  # ids 0 .. < 99
    good = hints.encode(hints.tokenize(TEXT), lex, budget=48)
    with pytest.raises(StoreCorruptError, match="hints"):
        hints.decode_many([good, msgpack.packb(items)], lex)


def test_sentence_initial_name_keeps_its_case_when_known():
    text = "Ana said she is allergic to peanuts."
    lex = _lexicon(text, "We met Ana yesterday.")
    got = hints.decode(hints.encode(hints.tokenize(text), lex, budget=48), lex)
    assert got[0] == "Ana"
    lex2 = _lexicon("The cat sat.", "Then the dog came.")
    assert "The" not in hints.decode(hints.encode(hints.tokenize("The cat sat."), lex2, budget=48), lex2)


def test_title_abbreviation_does_not_start_a_sentence():
    keys = [t.key for t in hints.tokenize("We asked Dr. Smith and Mrs. Jones about it.")]
    assert "Smith" in keys and "Jones" in keys


def test_term_ids_do_not_depend_on_set_order():
    a, b = hints.Lexicon(), hints.Lexicon()
    a.observe([{"zeta", "alpha", "mid"}])
    b.observe([{"mid", "zeta", "alpha"}])
    assert a.terms == b.terms == ["alpha", "mid", "zeta"]


def test_a_batch_of_new_terms_gets_consecutive_ids_in_sorted_order():
    lex = hints.Lexicon()
    assert lex.observe([{"pear", "apple"}, {"fig", "apple"}]) == [0, 1, 2]
    assert lex.terms == ["apple", "fig", "pear"] and lex.df == [2, 1, 1] and lex.n_docs == 2
    assert lex.observe([{"banana", "pear"}, {"zucchini"}]) == [3, 4]  # after the old ones, sorted among themselves
    assert lex.terms[3:] == ["banana", "zucchini"] and lex.ids["zucchini"] == 4 and lex.df[2] == 2
    assert lex.observe([{"pear"}]) == [] and lex.df[2] == 3 and lex.n_docs == 5


def test_token_positions_are_the_regex_match_starts():
    """``tokenize`` finds each match's start with ``str.find`` after the previous match: the same offsets."""
    import random

    rng = random.Random(7)
    alphabet = list("aAbBzZ09 .!?…:;\n-'’_,/%éÉßΣσ中") + ["Dr. ", "xDr. ", "e.g. ", ". ", "Smith", "ab", "1.5"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        starts = {m.start(): m.group() for m in hints._TOKEN.finditer(text)}
        for t in hints.tokenize(text):
            assert starts.get(t.pos) == t.text, (text, t)
