"""memory/termindex.py: the term index of text/llm stores, kept with the records, and its BM25 scores."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from hashmem.memory import Memory, fusion, hints, lexical, termcode, termindex
from hashmem.memory.backends.local import sidetables
from hashmem.memory.hints import Lexicon
from hashmem.memory.search import Candidates

DOCS = [
    "The Zorblax turbine spins at 4000 rpm in the Quenby test rig; the turbine spins fast.",
    "Boundary layer separation on a swept wing at high angle of attack, 12.5% chord.",
    "Serum IgG antibodies and McDonald's IgG assay, IgG levels rose in 1998 and in 1998 again.",
    "Heat transfer in laminar flow over a flat plate.",
    "Vortex shedding behind a circular cylinder at low Reynolds number; vortex vortex vortex.",
    "Ünïcode wörds — naïve café résumé, and a one-letter vitamin D.",
]


def from_scratch(mem, ids) -> dict:
    """Each record's entry made again from its exact text with the store's lexicon now (in the store's format)."""
    lex = mem.storage.load_lexicon()
    fmt = mem.backend.term_format()
    return {i: termindex.encode(hints.tokenize(mem.get(i).text), lex, fmt) for i in ids}


def stored(mem) -> dict:
    ids = [r[0] for r in mem.storage.conn.execute("SELECT id FROM term_index ORDER BY id")]
    return {i: termindex.entry(e) for i, e in sorted(mem.backend.term_entries(ids).items())}


def length(entry) -> int:
    """An entry's ``|d|``, as BM25 reads it."""
    return int(termindex._decode([entry])[3][0])


@pytest.fixture
def all_terms(monkeypatch):
    monkeypatch.setattr(termindex, "MAX_TERMS", None)


# -- the codec, without a store ----------------------------------------------------------------


def _lexicon(words) -> Lexicon:
    lex = Lexicon()
    lex.observe([set(words)])
    return lex


@pytest.mark.parametrize("fmt", [1, 2])
@pytest.mark.parametrize("text", DOCS + ["", "1998", "a b c", "word " * 300])
def test_decode_gives_back_every_term_and_count(text, fmt, all_terms):
    toks = hints.tokenize(text)
    lex = _lexicon(hints.terms_of(toks))
    lex.observe([{f"filler{i}" for i in range(20000)}])  # large ids: varints of 3 bytes
    entry = termindex.encode(toks, lex, fmt)
    owner, ids, counts = termindex.decode([None, entry, entry])
    assert owner.tolist() == [1] * (len(ids) // 2) + [2] * (len(ids) // 2)
    half = len(ids) // 2
    got = {lex.terms[i]: c for i, c in zip(ids[:half].tolist(), counts[:half].tolist(), strict=True)}
    want = {k: min(n, 255) for k, n in Counter(t.key for t in toks if t.kind != "number").items()}
    assert got == want and length(entry) == len(toks) == len(lexical.terms(text))


@pytest.mark.parametrize("fmt", [1, 2])
def test_scores_equal_bm25_over_the_words_including_case_variants_and_numbers(fmt, all_terms):
    toks = [hints.tokenize(t) for t in DOCS]
    lex = Lexicon()
    lex.observe([hints.terms_of(t) for t in toks])
    entries = [termindex.encode(t, lex, fmt) for t in toks]
    assert "IgG" in lex.ids and "igg" not in lex.ids  # a name with its case: matched through Lexicon.lowered
    for q in ("igg levels 1998", "vortex turbine spins", "12.5% chord wing", "mcdonald's café", "nothing here"):
        query = lexical.terms(q)
        weights = lexical.idf(lexical.document_frequencies(lex, query), lex.n_docs)
        want = lexical.bm25(query, [lexical.terms(t) for t in DOCS], weights)
        got = termindex.scores(query, entries, lex, weights)
        np.testing.assert_array_equal(got, want)  # the same float32 operations
    assert termindex.scores(["igg"], [None, entries[2]], lex, {"igg": 1.0})[0] == 0.0


@pytest.mark.parametrize("fmt", [1, 2])
def test_max_terms_keeps_the_heaviest_terms_and_the_whole_length(fmt, monkeypatch):
    text = "rare1word " + "common " * 3 + " ".join(f"w{i}x" for i in range(60))
    toks = hints.tokenize(text)
    lex = Lexicon()
    lex.observe([hints.terms_of(toks)] + [{"common"}] * 50)
    monkeypatch.setattr(termindex, "MAX_TERMS", 10)
    entry = termindex.encode(toks, lex, fmt)
    _, ids, _ = termindex.decode([entry])
    kept = {lex.terms[i] for i in ids}
    assert len(kept) == 10 and "common" not in kept and length(entry) == len(toks)


NUMBERS = [{}, {"1998": 1}, {"12.5%": 3, "4000": 1, "0": 17, "7": 255}, {"١٩٩٨": 2, "3": 1},  # Arabic-Indic: msgpack
           {"1234567890123456": 1}, {f"{i}": i % 20 + 1 for i in range(40)}]


@pytest.mark.parametrize("numbers", NUMBERS)
def test_termcode_blobs_round_trip_many_at_once(numbers):
    rng = np.random.default_rng(len(numbers))
    entries = []
    for size, top in ((0, 10), (1, 1), (3, 2 ** 40), (90, 60000), (400, 400), (5, 10 ** 7)):
        ids = np.unique(rng.integers(0, top, size)).tolist()
        counts = rng.choice([1, 1, 1, 2, 3, 9, 300], len(ids)).tolist()
        extra = sum(numbers.values()) + int(rng.integers(0, 3))
        entries.append((ids, counts, extra + sum(min(c, 255) for c in counts)))
    blobs = [termcode.pack(n, ids, counts, numbers) for ids, counts, n in entries]
    owner, ids, counts, lengths, starts = termcode.unpack(blobs)
    for p, (want_ids, want_counts, n) in enumerate(entries):
        assert ids[owner == p].tolist() == want_ids and lengths[p] == n
        assert counts[owner == p].tolist() == [min(c, 255) for c in want_counts]
        assert termcode.numbers(blobs[p], int(starts[p])) == {s: min(c, 255) for s, c in numbers.items()}


def test_termcode_is_smaller_than_format_1(all_terms):
    toks = [hints.tokenize(t) for t in DOCS * 3]
    lex = Lexicon()
    lex.observe([hints.terms_of(t) for t in toks])
    lex.observe([{f"filler{i}" for i in range(5000)}])
    old = [termindex.encode(t, lex, 1) for t in toks]
    assert sum(map(len, (termindex.encode(t, lex, 2) for t in toks))) < \
        sum(len(e.terms) + len(e.counts) + len(e.numbers or b"") + 2 for e in old)


# -- kept with the records ------------------------------------------------------------------------


@pytest.mark.slow
def test_index_follows_add_and_delete_and_hybrid_uses_it(tmp_path, all_terms):
    with Memory(tmp_path / "t.db", fidelity="text") as mem:
        ids = mem.add(DOCS)
        assert mem.backend.has_term_index()
        assert stored(mem) == from_scratch(mem, ids)
        mem.delete([ids[1], ids[4]])
        assert stored(mem) == from_scratch(mem, [i for i in ids if i not in (ids[1], ids[4])])
        more = mem.add(["A second Zorblax turbine, the Quenby mark II."])
        assert stored(mem) == from_scratch(mem, mem.ids()) and more[0] in stored(mem)

        # the index's BM25 is the decode path's, and the search through Memory agrees with it
        live = np.array(mem.ids(), dtype=np.int64)
        cands = Candidates(live, np.zeros(len(live), np.uint32))
        side = fusion.hybrid_for(mem, ["zorblax turbine IgG", "heat flow 1998"], 0.4)
        for qi in range(2):
            np.testing.assert_array_equal(side.bm25(qi, cands)[0],
                                          lexical.bm25(side.queries[qi], side.passages(cands), side.weights[qi]))
        hyb = mem.search("Zorblax turbine", 5, mode="hybrid")
        assert hyb[0].id in (ids[0], more[0]) and {h.id for h in hyb} <= set(mem.ids())
        mem.backend.has_term_index = lambda: False  # as a store without the index: decode the bodies
        assert [(h.id, h.score) for h in mem.search("Zorblax turbine", 5, mode="hybrid")] == \
               [(h.id, h.score) for h in hyb]


@pytest.mark.slow
def test_a_text_store_made_before_the_index_decodes_bodies_and_never_gets_a_partial_index(tmp_path):
    path = tmp_path / "old.db"
    with Memory(path, fidelity="text") as mem:
        mem.add(DOCS)
        want = [(h.id, h.score) for h in mem.search("vortex cylinder", 4, mode="hybrid")]
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE term_index")  # the layout of a text store made before the index
    conn.commit()
    conn.close()
    with Memory(path) as mem:
        assert not mem.backend.has_term_index()
        assert [(h.id, h.score) for h in mem.search("vortex cylinder", 4, mode="hybrid")] == want
        mem.add(["Vortex rings in a cylinder wake."])
        assert not mem.backend.has_term_index()  # no index that would miss the older records
        assert mem.search("vortex rings", 1, mode="hybrid")[0].id == 7


@pytest.mark.slow
def test_a_store_with_format_1_entries_reads_and_writes_them(tmp_path, all_terms):
    path = tmp_path / "v1.db"
    with Memory(path, fidelity="text") as mem:
        ids = mem.add(DOCS)
        want = [(h.id, h.score) for h in mem.search("vortex cylinder 1998", 4, mode="hybrid")]
        lex = mem.storage.load_lexicon()
        rows = [(i, *termindex.encode(hints.tokenize(mem.get(i).text), lex, 1)) for i in ids]
    conn = sqlite3.connect(path)  # the table of a store made before format 2, with its rows
    conn.execute("DROP TABLE term_index")
    conn.execute(sidetables.TERMS_V1)
    conn.executemany("INSERT INTO term_index VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    with Memory(path) as mem:
        assert mem.backend.has_term_index() and mem.backend.term_format() == 1
        assert [(h.id, h.score) for h in mem.search("vortex cylinder 1998", 4, mode="hybrid")] == want
        mem.add(["Vortex rings in a cylinder wake, 1998."])
        got = stored(mem)
        assert got == from_scratch(mem, mem.ids()) and all(isinstance(e, termindex.TermStats) for e in got.values())
        live = np.array(mem.ids(), dtype=np.int64)
        side = fusion.hybrid_for(mem, ["vortex rings 1998"], 0.4)
        cands = Candidates(live, np.zeros(len(live), np.uint32))
        np.testing.assert_array_equal(side.bm25(0, cands)[0],
                                      lexical.bm25(side.queries[0], side.passages(cands), side.weights[0]))


@pytest.mark.slow
def test_hints_store_keeps_no_index(tmp_path):
    with Memory(tmp_path / "h.db") as mem:
        mem.add(DOCS[:2])
        assert not mem.backend.has_term_index()
        assert mem.search("Zorblax", 1, mode="hybrid")[0].id == 1


CHILD = """
import sys
from hashmem.memory import Memory
m = Memory(sys.argv[1], batch_size=32, fidelity="text")
texts = [f"observation number {i} about topic{i % 17} and Place{i % 5}, item {i}" for i in range(100000)]
m.add(texts, progress=False)
"""


@pytest.mark.slow
def test_sigkill_mid_add_leaves_the_index_equal_to_the_records(tmp_path, all_terms):
    path = tmp_path / "crash.db"
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-c", "from hashmem.memory import termindex; "
                             "termindex.MAX_TERMS = None\n" + CHILD, str(path)], env=env)

    def count() -> int:
        try:
            c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
            try:
                return c.execute("SELECT count(*) FROM term_index").fetchone()[0]
            finally:
                c.close()
        except sqlite3.Error:
            return 0

    try:
        deadline = time.time() + 240
        while count() < 3 * 32:
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    with Memory(path) as mem:
        n = len(mem)
        assert n >= 96 and n % 32 == 0
        assert stored(mem) == from_scratch(mem, mem.ids())
        assert mem.search("observation number 40", 1, mode="hybrid")[0].id == 41
