"""memory/dedup.py: exact keys, the in-batch and stored tests, and ``Memory.add(dedup=...)`` / ``remember``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hashmem.memory import ConfigError, Match, Memory, Remembered, dedup
from tests.conftest import PASSAGES


@pytest.mark.parametrize("a, b", [
    ("The cat sat.", "the  CAT sat.\n"),
    ("Straße und ﬁsh", "STRASSE UND fish"),  # casefold ß → ss, NFKC ligature ﬁ → fi
    ("tabs\tand\nnewlines", " tabs and newlines "),
])
def test_exact_keys_ignore_case_and_whitespace(a, b):
    assert dedup.normalize(a) == dedup.normalize(b)
    assert dedup.text_key(a) == dedup.text_key(b)


@pytest.mark.parametrize("a, b", [("The cat sat.", "The cat sat!"), ("It cost 3 dollars.", "It cost 4 dollars."),
                                  ("dog bites man", "man bites dog")])
def test_exact_keys_keep_punctuation_digits_and_order(a, b):
    assert dedup.text_key(a) != dedup.text_key(b)


def test_within_batch_points_at_the_first_of_each_group():
    v = np.array([[1, 0, 0], [0, 1, 0], [0.99, 0.1, 0], [1, 0, 0], [0, 0, 1]], np.float32)
    texts = ["a", "b", "c", "A ", "e"]
    got = dedup.within_batch(texts, v, 0.95)
    assert got[0] is None and got[1] is None and got[4] is None
    assert got[2][0] == 0 and got[2][2] is False and got[2][1] == pytest.approx(0.995, abs=1e-3)
    assert got[3] == (0, 1.0, True)  # by the text key, before any cosine


@pytest.mark.parametrize("n", [0, 1])
def test_within_batch_edges(n):
    assert dedup.within_batch(["x"] * n, np.ones((n, 4), np.float32), 0.9) == [None] * n


def test_resolve_chains_through_an_earlier_repeat():
    matched = [("id", 7, 0.95, False), None, ("pos", 0, 1.0, True), ("pos", 1, 0.93, False)]
    found: list[Match] = []
    assert dedup.resolve(4, [1], [20], matched, found) == [7, 20, 7, 20]
    assert [(m.position, m.id, m.exact) for m in found] == [(0, 7, False), (2, 7, True), (3, 20, False)]


@pytest.mark.parametrize("policy", ["merge", "Replace", ""])
def test_unknown_policies_raise(policy):
    with pytest.raises(ConfigError, match="not supported; use one of keep, skip, replace"):
        dedup.check_policy(policy)


def test_plan_replace_lets_the_newest_of_each_group_win():
    # 0 new; 1 repeats stored 7; 2 repeats 0; 3 new; 4 repeats 1 (so stored 7); 5 repeats stored 7 directly
    matched = [None, ("id", 7, 0.9, False), ("pos", 0, 0.95, False), None, ("pos", 1, 0.99, False),
               ("id", 7, 0.91, False)]
    assert dedup.plan(matched, "skip") == ([0, 3], [0, 3], {})
    assert dedup.plan(matched, "replace") == ([0, 3], [2, 3], {7: 5})
    assert dedup.plan([None, None], "replace") == ([0, 1], [0, 1], {})


def test_add_keeps_by_default(mem):
    n = len(mem)
    ids = mem.add([PASSAGES[0]])
    assert ids[0] > n and len(mem) == n + 1


def test_add_skip_returns_the_stored_id(mem):
    n = len(mem)
    ids = mem.add([PASSAGES[4].upper(), "  " + PASSAGES[5] + "\n", "Zebras graze on the savanna at dawn."],
                  dedup="skip")
    assert ids[:2] == [5, 6] and ids[2] > n
    assert len(mem) == n + 1


def test_remember_reports_repeats_in_the_store_and_in_the_batch(mem):
    paraphrase = "Marie Curie received the Nobel Prize in Physics in 1903 and the Chemistry prize in 1911."
    new = "The lighthouse keeper rowed to the island every Tuesday."
    r = mem.remember([paraphrase, new, new.lower(), "Lighthouse keeper rowed to the island each Tuesday."])
    assert isinstance(r, Remembered)
    assert r.ids[0] == 6 and r.ids[2] == r.ids[1] == r.ids[3] and r.added == [r.ids[1]]
    by_pos = {m.position: m for m in r.matches}
    assert set(by_pos) == {0, 2, 3}
    assert by_pos[0].id == 6 and not by_pos[0].exact and by_pos[0].score >= dedup.DEFAULT_THRESHOLD
    assert by_pos[2].exact and by_pos[2].score == 1.0
    assert mem.get(r.ids[1]).namespace == "default"


def test_remember_stays_within_the_namespace(mem):
    r = mem.remember([PASSAGES[0]], namespace="other")
    assert r.matches == [] and r.ids[0] > len(PASSAGES)


def test_remember_checks_the_threshold(mem):
    with pytest.raises(ConfigError, match=r"threshold must be in \(0, 1\]"):
        mem.remember(["x y z"], threshold=1.5)


def test_skip_on_a_text_store_keeps_each_body_with_its_record(tmp_path):
    with Memory(tmp_path / "t.db", fidelity="text") as m:
        m.add(PASSAGES[:4])
        texts = [PASSAGES[1].lower(), "Glaciers carve U-shaped valleys over thousands of years.", PASSAGES[6],
                 "Glaciers carve u-shaped valleys over thousands of years."]
        r = m.remember(texts)
        assert r.ids[0] == 2 and r.ids[3] == r.ids[1] and len(r.added) == 2
        assert m.get(r.ids[1]).text == texts[1] and m.get(r.ids[2]).text == PASSAGES[6]
    with Memory(tmp_path / "t.db") as m:  # reopened: every record and its body as written
        assert len(m) == 6 and m.get(r.ids[2]).text == PASSAGES[6]
        assert m.search(texts[1], 1)[0].id == r.ids[1]


def test_skip_across_batches_of_one_add(tmp_path):
    with Memory(tmp_path / "b.db", batch_size=2) as m:
        ids = m.add(PASSAGES[:3] + [PASSAGES[0], PASSAGES[2].lower()], dedup="skip")
        assert ids == [1, 2, 3, 1, 3] and len(m) == 3


def test_cli_add_dedup_skip_says_what_it_skipped(tmp_path):
    from click.testing import CliRunner

    from hashmem.cli.main import cli

    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(f'{{"text": "{t}"}}' for t in PASSAGES[:3]) + "\n")
    again = tmp_path / "again.jsonl"
    again.write_text(f'{{"text": "{PASSAGES[1].upper()}"}}\n{{"text": "Owls hunt mice at night in the barn."}}\n')
    store = ["--store", str(tmp_path / "c.db")]
    r = CliRunner().invoke(cli, [*store, "add", str(rows)], catch_exceptions=False)
    assert r.exit_code == 0 and "added 3 passages" in r.output and "skipped" not in r.output
    r = CliRunner().invoke(cli, [*store, "add", "--dedup", "skip", str(again)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "added 1 passages from 1 file(s)" in r.output and "skipped 1 repeating passages already kept (matched id 2)" \
        in r.output
    newer = tmp_path / "newer.jsonl"
    newer.write_text(f'{{"text": "{PASSAGES[2]} Updated.", "v": 2}}\n')
    r = CliRunner().invoke(cli, [*store, "add", "--dedup", "replace", str(newer)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "added 0 passages" in r.output and "replaced 1 passages already kept with newer repeats (matched id 3)" \
        in r.output
    r = CliRunner().invoke(cli, [*store, "add", "--dedup", "merge", str(again)], catch_exceptions=False)
    assert r.exit_code == 2 and "'merge' is not one of 'keep', 'skip', 'replace'" in r.output
    with Memory(tmp_path / "c.db") as m:
        assert len(m) == 4 and m.get(3).metadata["v"] == 2


UPDATED = "Marie Curie of Warsaw won the Nobel Prize in Physics in 1903 and in Chemistry in 1911."


@pytest.mark.parametrize("fidelity", ["hints", "text", "llm"])
def test_replace_keeps_the_id_and_returns_the_new_passage(tmp_path, fidelity):
    with Memory(tmp_path / f"{fidelity}.db", fidelity=fidelity) as m:
        ids = m.add(PASSAGES, metadata=[{"n": i} for i in range(len(PASSAGES))])
        before = m.get(ids[5])
        n_docs = m.lexicon.n_docs
        r = m.remember([UPDATED], metadata={"n": 5, "v": 2}, dedup="replace")
        assert r.ids == [ids[5]] and [(x.position, x.id) for x in r.matches] == [(0, ids[5])]
        assert r.matches[0].score >= dedup.DEFAULT_THRESHOLD and r.added == []
        assert len(m) == len(PASSAGES) and m.ids() == ids
        after = m.get(ids[5])
        assert after.metadata == {"n": 5, "v": 2} and after.created == before.created
        assert after.namespace == "default" and "Warsaw" in after.hints and not np.array_equal(after.qvec, before.qvec)
        assert after.text == (None if fidelity == "hints" else UPDATED)
        lex = m.lexicon
        assert lex.n_docs == n_docs and lex.df[lex.ids["Warsaw"]] == 1
        hits = m.search("Curie of Warsaw", 1, mode="binary")
        assert hits[0].id == ids[5] and hits[0].metadata["v"] == 2
        np.testing.assert_array_equal(m.index.spaces["default"].codes_of([ids[5]])[0, : m.config.bits // 8],
                                      after.code)
    with Memory(tmp_path / f"{fidelity}.db") as m:  # reopened: the rewrite was committed whole
        again = m.get(ids[5])
        assert again.metadata == {"n": 5, "v": 2} and again.text == after.text
        np.testing.assert_array_equal(again.code, after.code)
        assert m.search(UPDATED, 1)[0].id == ids[5]


def test_replace_counts_the_old_terms_out_on_a_text_store(tmp_path):
    with Memory(tmp_path / "t.db", fidelity="text") as m:
        m.add(PASSAGES)
        lex = m.lexicon
        df = {t: lex.df[lex.ids[t]] for t in ("Curie", "Chemistry")}
        m.remember(["Marie Curie won the Nobel Prize in Physics in 1903 and twice in 1911."], dedup="replace")
        lex = m.lexicon
        assert lex.df[lex.ids["Curie"]] == df["Curie"]  # in the old and the new text: counted once
        assert lex.df[lex.ids["Chemistry"]] == df["Chemistry"] - 1  # only in the old text
    with Memory(tmp_path / "t.db") as m:  # the counts were stored with the rewrite
        assert m.lexicon.df[m.lexicon.ids["Chemistry"]] == df["Chemistry"] - 1


def test_replace_within_one_add_stores_the_newest(tmp_path):
    with Memory(tmp_path / "w.db", fidelity="text") as m:
        a = "The ferry to the island leaves at seven every morning."
        b = "The ferry to the island leaves at seven each morning."
        ids = m.add([a, b], metadata=[{"v": 1}, {"v": 2}], dedup="replace")
        assert ids[0] == ids[1] and len(m) == 1
        assert m.get(ids[0]).text == b and m.get(ids[0]).metadata == {"v": 2}


PEER = textwrap.dedent("""
    import json, sys
    from hashmem.memory import Memory
    m = Memory(sys.argv[1])
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "look":
            i = int(arg)
            hit = m.search(sys.argv[2], k=1, mode="binary")[0]
            code = m.index.spaces["default"].codes_of([i])[0, : m.config.bits // 8]
            print(json.dumps([hit.id, hit.hamming, code.tobytes().hex(), m.get(i).metadata]), flush=True)
        elif cmd == "replace":
            print(json.dumps(m.remember([sys.argv[2]], metadata={"v": 2}, dedup="replace").ids), flush=True)
""")


def _peer(path, text):
    return subprocess.Popen([sys.executable, "-c", PEER, str(path), text], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ask(peer, line):
    peer.stdin.write(line + "\n")
    peer.stdin.flush()
    out = peer.stdout.readline().strip()
    assert out, peer.stderr.read()
    return json.loads(out)


def test_another_process_sees_a_replace_in_its_open_handle(tmp_path):
    path = tmp_path / "shared.db"
    with Memory(path) as m:
        ids = m.add(PASSAGES)
    peer = _peer(path, UPDATED)
    try:
        seen_before = _ask(peer, f"look {ids[5]}")  # the peer's index is built: the old code
        with Memory(path) as m:
            old = m.get(ids[5]).code
            assert bytes.fromhex(seen_before[2]) == old.tobytes()
            assert m.remember([UPDATED], metadata={"v": 2}, dedup="replace").ids == [ids[5]]
            new = m.get(ids[5]).code
            query = m.hasher.encode(m.embedder.encode([UPDATED]))[0]
        assert not np.array_equal(old, new)
        hit_id, hamming, code, meta = _ask(peer, f"look {ids[5]}")  # the same open handle, caught up
        assert code == new.tobytes().hex() and meta == {"v": 2}
        assert hit_id == ids[5] and hamming == int(np.unpackbits(query ^ new).sum())
    finally:
        peer.communicate(timeout=60)


def test_an_open_handle_sees_another_process_replace(tmp_path):
    path = tmp_path / "shared.db"
    with Memory(path) as mine:
        ids = mine.add(PASSAGES)
        assert mine.search(UPDATED, 1, mode="binary")[0].id == ids[5]  # the index is built
        peer = _peer(path, UPDATED)
        try:
            assert _ask(peer, "replace") == [ids[5]]
        finally:
            peer.communicate(timeout=60)
        stored = mine.backend.rows([ids[5]], ("code",)).array("code", np.uint8)[0]
        np.testing.assert_array_equal(mine.get(ids[5]).code, stored)
        hit = mine.search(UPDATED, 1, mode="binary")[0]  # catches up first: the peer's code, in this index
        np.testing.assert_array_equal(mine.index.spaces["default"].codes_of([ids[5]])[0, : mine.config.bits // 8],
                                      stored)
        assert hit.id == ids[5] and hit.metadata == {"v": 2}
        assert hit.hamming == int(np.unpackbits(mine.hasher.encode(mine.embedder.encode([UPDATED]))[0] ^ stored).sum())


def test_a_replace_that_fails_midway_changes_nothing(tmp_path, monkeypatch):
    from hashmem.memory import StoreError
    from hashmem.memory.backends.local.sidetables import RewriteLog

    with Memory(tmp_path / "f.db", fidelity="text") as m:
        ids = m.add(PASSAGES)
        before = m.get(ids[5])
        lex_before = m.backend.load_lexicon()

        def fail(self, conn, ids):
            raise StoreError("the disk went away")

        monkeypatch.setattr(RewriteLog, "note", fail)  # after the record, body and lexicon writes of the batch
        with pytest.raises(StoreError, match="the disk went away"):
            m.remember([UPDATED, "A new passage about herons in the shallows."], dedup="replace")
        monkeypatch.undo()
        after = m.get(ids[5])
        assert after.text == before.text and after.metadata == before.metadata
        np.testing.assert_array_equal(after.code, before.code)
        assert len(m) == len(PASSAGES) and m.backend.load_lexicon() == lex_before
        assert m.search(PASSAGES[5], 1)[0].id == ids[5]
        assert m.remember([UPDATED], dedup="replace").ids == [ids[5]]  # and it can be repeated
        assert m.get(ids[5]).text == UPDATED


def test_best_stored_in_one_call_equals_each_passage_on_its_own(mem):
    """The batched stage (one Hamming call, one cosine) gives what the per-passage path gave, so the
    detector's measured precision and recall hold: same id (ties by the lowest id) and the same score."""
    from hashmem.memory import quantize

    texts = [p.lower() for p in PASSAGES] + ["Herons wait in the shallows.", UPDATED]
    deq = mem.quantizer.decode(mem.quantizer.encode(mem.embedder.encode(texts)))
    codes = mem.hasher.encode(deq)
    got = dedup.best_stored(mem.backend, mem.hasher, mem.quantizer, "default", deq, codes)
    for j in range(len(texts)):
        c = mem.backend.candidates("default", codes[j], dedup.DEDUP_CANDIDATES, generation=mem.hasher.generation)
        qv = mem.backend.rows(c.ids, ("qvec",)).array("qvec", np.int8)
        scores = quantize.cosine(dedup.unit(deq[j : j + 1]), qv, mem.quantizer)[0]
        best = int(np.lexsort((c.ids, -scores))[0])
        assert got[j][0] == int(c.ids[best]) and got[j][1] == pytest.approx(float(scores[best]), abs=1e-5)
    assert dedup.best_stored(mem.backend, mem.hasher, mem.quantizer, "nowhere", deq, codes) == [None] * len(texts)
