"""The decoding commands through CliRunner: recall, ask, search --recall, eval-recall."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hashmem.cli.main import cli

DOC = (
    "The Eiffel Tower in Paris is 330 metres tall and was completed in 1889 for the World's Fair. "
    "Honeybees communicate the direction of flowers to their hive mates with a waggle dance.\n\n"
    "Marie Curie won Nobel Prizes in both physics and chemistry for her work on radioactivity. "
    "The Amazon river carries more water than any other river in the world."
)


def run(args, **kw):
    result = CliRunner().invoke(cli, args, catch_exceptions=False, **kw)
    return result


@pytest.fixture(scope="module")
def text_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    path = d / "t.db"
    src = d / "doc.txt"
    src.write_text(DOC, encoding="utf-8")
    assert run(["--store", str(path), "init", "--fidelity", "text"]).exit_code == 0
    r = run(["--store", str(path), "add", "--passage-tokens", "24", str(src)])
    assert r.exit_code == 0, r.output
    return path


@pytest.fixture(scope="module")
def hints_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    path = d / "h.db"
    src = d / "doc.txt"
    src.write_text(DOC, encoding="utf-8")
    assert run(["--store", str(path), "init"]).exit_code == 0
    assert run(["--store", str(path), "add", "--passage-tokens", "24", str(src)]).exit_code == 0
    return path


def test_recall_json_is_exact_on_the_text_tier(text_store):
    r = run(["--store", str(text_store), "recall", "1", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["exact"] is True and d["fidelity"] == 1.0 and d["text"].startswith("The Eiffel Tower")


@pytest.mark.slow
def test_recall_with_the_llama_decoder_on_a_hints_store(hints_store):
    r = run(["--store", str(hints_store), "recall", "1", "--json", "--candidates", "1"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["decoder"] == "llama" and d["exact"] is False and d["candidates_tried"] == 1
    assert d["text"] and -1 <= d["fidelity"] <= 1


def test_recall_extractive_prints_text_and_fidelity(hints_store):
    r = run(["--store", str(hints_store), "recall", "1", "--decoder", "extractive"])
    assert r.exit_code == 0
    assert "Eiffel" in r.stdout and "fidelity" in r.stderr


def test_recall_of_a_missing_id_is_a_one_line_error(hints_store):
    r = run(["--store", str(hints_store), "recall", "999", "--decoder", "extractive"])
    assert r.exit_code == 1
    assert r.output.strip().startswith("Error: no record with id 999") and len(r.output.strip().splitlines()) == 1


def test_recall_with_a_missing_model_is_a_one_line_error(hints_store, tmp_path):
    r = run(["--store", str(hints_store), "recall", "1", "--model", str(tmp_path / "x.gguf")])
    assert r.exit_code == 1 and "does not exist" in r.output


def test_recall_falls_back_with_a_notice_without_llama_cpp(hints_store, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    r = run(["--store", str(hints_store), "recall", "1"])
    assert r.exit_code == 0
    notices = [line for line in r.stderr.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "extractive" in notices[0]


@pytest.mark.slow
def test_ask_json_cites_or_says_not_found(text_store):
    r = run(["--store", str(text_store), "ask", "Who won the 1966 football World Cup?", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["found"] is False and d["citations"] == [] and d["answer"] == "The memories do not hold the answer."


@pytest.mark.slow
def test_ask_streams_then_names_its_sources(text_store):
    r = run(["--store", str(text_store), "ask", "How tall is the Eiffel Tower?", "-k", "2"])
    assert r.exit_code == 0, r.output
    assert "-- sources:" in r.stderr
    assert r.stdout.strip()


def test_ask_rejects_an_empty_question(text_store):
    r = run(["--store", str(text_store), "ask", "  "])
    assert r.exit_code == 2


def test_search_recall_json_adds_a_reconstruction_per_hit(text_store):
    r = run(["--store", str(text_store), "search", "Eiffel Tower height", "-k", "2", "--recall", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 2 and all(row["recall"]["exact"] for row in rows)
    assert rows[0]["recall"]["text"].startswith("The Eiffel Tower")


def test_search_without_recall_is_unchanged(text_store):
    rows = json.loads(run(["--store", str(text_store), "search", "bees", "-k", "1", "--json"]).stdout)
    assert "recall" not in rows[0]


def test_eval_recall_json_has_the_issue_shape(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text(DOC * 3, encoding="utf-8")
    r = run(["eval-recall", str(data), "--sample", "3", "--index", "6", "--decoders", "extractive",
             "--llm-sample", "2", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) == {"dataset", "n", "hint_bytes_mean", "decoders", "text_tier", "llm_tier"}
    m = d["llm_tier"]
    assert m["n"] == 2 and m["roundtrip_rate"] == 1.0
    assert m["bytes_per_passage"] <= m["zstd_dict_bytes_per_passage"]  # a body that does not pay falls back
    assert {"gzip9_bytes_per_passage", "zstd19_bytes_per_passage", "ratio_to_gzip9", "decode_ms_p50",
            "decode_ms_p90", "coded_share"} <= set(m)
    assert d["n"] == 3
    assert set(d["decoders"]["extractive"]) == {"cosine_mean", "cosine_median", "invented_rate", "ms_p50", "ms_p90"}
    assert set(d["text_tier"]) == {"bytes_per_passage", "gzip9_bytes_per_passage", "zstd19_bytes_per_passage"}
    assert d["decoders"]["extractive"]["invented_rate"] == 0.0
    assert 0 < d["decoders"]["extractive"]["cosine_mean"] <= 1


def test_eval_recall_rejects_unknown_decoders_and_empty_dirs(tmp_path):
    assert run(["eval-recall", str(tmp_path), "--decoders", "gpt"]).exit_code == 2
    assert run(["eval-recall", str(tmp_path), "--llm-sample", "-1"]).exit_code == 2
    r = run(["eval-recall", str(tmp_path), "--decoders", "extractive"])
    assert r.exit_code == 1 and "neither corpus.jsonl" in r.output
