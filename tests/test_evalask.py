"""eval-ask: LoCoMo answer scoring, containment, and the command on a tiny LoCoMo-style dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hashmem.cli.main import cli
from hashmem.evaluation import ask as evalask
from hashmem.memory import InputError
from hashmem.memory.chunk import chunk_text

TURNS = [
    ("conv-a:D1:1", "conv-a", "8 May, 2023", "Caroline: I moved here from Sweden four years ago."),
    ("conv-a:D1:2", "conv-a", "8 May, 2023", "Melanie: I painted a lake sunrise last year, it is special to me."),
    ("conv-a:D1:3", "conv-a", "8 May, 2023", "Caroline: My research is on adoption agencies for the LGBTQ community."),
    ("conv-b:D1:1", "conv-b", "2 June, 2023", "Jon: I opened a dance studio downtown after losing my job."),
    ("conv-b:D1:2", "conv-b", "2 June, 2023", "Gina: My store sells clothing and I run it online."),
]
QUESTIONS = [
    {"_id": "conv-a:q0", "text": "Where did Caroline move from?", "conv": "conv-a", "category": 4,
     "answer": "Sweden", "evidence_raw": ["D1:1"]},
    {"_id": "conv-a:q1", "text": "What did Caroline research?", "conv": "conv-a", "category": 4,
     "answer": "Adoption agencies", "evidence_raw": ["D1:3"]},
    {"_id": "conv-b:q0", "text": "What did Jon open?", "conv": "conv-b", "category": 4,
     "answer": "a dance studio", "evidence_raw": ["D1:1"]},
    {"_id": "conv-b:q1", "text": "What is Gina's favourite film?", "conv": "conv-b", "category": 5,
     "answer": None, "evidence_raw": ["D1:2"]},
]


@pytest.fixture
def locomo(tmp_path):
    root = tmp_path / "locomo"
    root.mkdir()
    with open(root / "corpus.jsonl", "w") as f:
        for i, conv, date, text in TURNS:
            f.write(json.dumps({"_id": i, "text": text, "conv": conv, "date_time": date}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        f.writelines(json.dumps(q) + "\n" for q in QUESTIONS)
    return root


def test_locomo_normalization_and_token_f1():
    assert evalask.normalize_answer("The Sunday, before 25 May 2023!") == "sunday before 25 may 2023"
    assert evalask.token_f1("a dance studio", "dance studio") == 1.0
    assert evalask.token_f1("Sweden [3]".replace(" [3]", ""), "Sweden") == 1.0
    assert evalask.token_f1("adoption", "Adoption agencies") == pytest.approx(2 / 3)
    assert evalask.token_f1("Norway", "Sweden") == 0.0 and evalask.token_f1("", "x") == 0.0
    assert evalask.contains("(8 May, 2023) Caroline: I moved from Sweden", "Sweden")
    assert not evalask.contains("Caroline moved", "Sweden") and not evalask.contains("anything", "")


def test_pick_spreads_the_limit_over_the_file():
    qs = [{"i": i} for i in range(10)]
    assert [q["i"] for q in evalask.pick(qs, 3)] == [0, 4, 9]  # linspace 0, 4.5, 9 rounds half to even
    assert evalask.pick(qs, None) == qs and evalask.pick(qs, 50) == qs


def test_eval_ask_scores_an_extractive_run_on_a_text_store(locomo):
    rows = []
    r = evalask.evaluate(locomo, fidelity="text", k=2, decoder="extractive", details=rows)
    assert r["n"] == 4 and r["n_answerable"] == 3 and r["unanswerable"]["n"] == 1
    assert r["containment@2"]["exact"] == 1.0  # every gold answer is in its conversation's top 2
    assert r["containment@2"]["hints"] <= r["containment@2"]["exact"]
    assert 0 < r["answerable"]["f1"] <= 1 and r["answerable"]["invented"] == 0.0
    assert r["answerable"]["citation_precision"] is not None
    by_id = {row["id"]: row for row in rows}
    assert "Sweden" in by_id["conv-a:q0"]["answer"] and by_id["conv-a:q0"]["cited"] == ["conv-a:D1:1"]
    assert all(c.startswith("conv-b") for c in by_id["conv-b:q0"]["cited"])  # searched within its conversation


def test_eval_ask_command_json_and_bad_datasets(locomo, tmp_path):
    run = CliRunner().invoke
    r = run(cli, ["eval-ask", str(locomo), "--decoder", "extractive", "--fidelity", "hints", "--limit", "2",
                  "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n"] == 2 and d["fidelity"] == "hints" and d["containment@5"]["exact"] is None
    assert set(d["answerable"]) == {"f1", "exact_match", "not_found", "citation_precision", "invented"}
    r = run(cli, ["eval-ask", str(tmp_path)])
    assert r.exit_code == 1 and "lacks corpus.jsonl" in r.output
    with pytest.raises(InputError, match="lacks"):
        evalask.load(tmp_path)


def test_a_book_set_is_chunked_like_hashmem_add_and_its_questions_name_words_of_their_book(tmp_path):
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "book_ask"
    books = json.loads((root / "books.json").read_text())
    if not all((root / b["path"]).is_file() for b in books):
        pytest.skip("the shared Canterbury texts (../shared/data/canterbury) are absent")
    turns, questions = evalask.load(root)
    assert len(questions) >= 20 and {q["conv"] for q in questions} == {b["conv"] for b in books}
    for b in books:
        text = (root / b["path"]).read_bytes().decode("utf-8")  # "\r\n" kept, as hashmem add reads it
        mine = [t for t in turns if t["conv"] == b["conv"]]
        assert [t["text"] for t in mine] == [p.text for p in chunk_text(text)]
        for q in questions:
            if q["conv"] == b["conv"]:  # a written answer the book holds (its words, in any case)
                words = set(evalask.normalize_answer(text).split())
                assert set(evalask.normalize_answer(q["answer"]).split()) <= words, q
    (tmp_path / "books.json").write_text(json.dumps([{"conv": "x", "path": "missing.txt"}]))
    (tmp_path / "queries.jsonl").write_text("")
    with pytest.raises(InputError, match="book 'x' not found"):
        evalask.load(tmp_path)
