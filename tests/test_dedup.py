"""memory/dedup.py: exact keys, the in-batch and stored tests, and ``Memory.add(dedup=...)`` / ``remember``."""

from __future__ import annotations

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


@pytest.mark.parametrize("policy, match", [("replace", "not supported yet"), ("merge", "not supported; use")])
def test_unknown_policies_raise(policy, match):
    with pytest.raises(ConfigError, match=match):
        dedup.check_policy(policy)


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
    r = CliRunner().invoke(cli, [*store, "add", "--dedup", "replace", str(again)], catch_exceptions=False)
    assert r.exit_code == 2 and "'replace' is not one of 'keep', 'skip'" in r.output
