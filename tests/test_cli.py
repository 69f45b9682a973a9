"""The hashmem CLI through CliRunner: commands, JSON output, one-line errors, exit codes."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hashmem.cli.main import cli


@pytest.fixture
def run(tmp_path):
    store = tmp_path / "cli.db"
    runner = CliRunner()

    def _run(*args, input=None):
        return runner.invoke(cli, ["--store", str(store), *args], input=input, catch_exceptions=False)

    _run.store = store
    return _run


@pytest.fixture
def filled(run, tmp_path, passages):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("\n\n".join(passages[:4]), encoding="utf-8")
    (docs / "sub" / "b.md").write_text("\n\n".join(passages[4:]), encoding="utf-8")
    r = run("init", "--bits", "128")
    assert r.exit_code == 0, r.output
    r = run("add", str(docs), "--meta", "project=test", "--passage-tokens", "24")
    assert r.exit_code == 0, r.output
    return run


def _one_line_error(r):
    assert r.exit_code != 0
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    assert "Traceback" not in r.output
    return lines[0]


def test_init_add_search_show_stats_delete(filled):
    r = filled("search", "Nobel Prize in chemistry", "-k", "2", "--json")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert len(hits) == 2 and "Curie" in hits[0]["hints"]
    assert hits[0]["metadata"]["project"] == "test"
    assert hits[0]["metadata"]["source"].endswith("b.md")
    top = hits[0]["id"]

    r = filled("search", "Nobel Prize in chemistry", "-k", "2")
    assert r.exit_code == 0 and "Curie" in r.output

    r = filled("show", str(top), "--json")
    rec = json.loads(r.output)
    assert rec["id"] == top and len(bytes.fromhex(rec["code"])) == 16

    r = filled("stats", "--json")
    st = json.loads(r.output)
    assert st["records"] >= 4 and st["config"]["bits"] == 128
    assert st["bytes_per_passage"]["code"] == 16
    assert abs(sum(st["file_parts"].values()) - st["file_bytes"]) <= 0.02 * st["file_bytes"]
    assert st["file_parts"]["code"] == 16 * st["records"]

    r = filled("stats")
    assert "bytes/passage" in r.output and "file by part" in r.output and "lexicon" in r.output

    r = filled("delete", str(top))
    assert r.exit_code == 0 and "deleted 1 of 1" in r.output
    r = filled("delete", str(top))
    assert r.exit_code == 1


def test_add_jsonl_and_stdin_and_namespace(run, tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text(
        json.dumps({"_id": "d1", "text": "Zebras live on the African savanna.", "kind": "animal"}) + "\n"
        + json.dumps({"_id": "d2", "text": "Volcanoes erupt molten rock called lava."}) + "\n"
    )
    assert run("add", str(p), "--namespace", "facts").exit_code == 0
    r = run("add", "-", "--namespace", "notes", input="Remember to buy oat milk on Friday.\n")
    assert r.exit_code == 0, r.output
    hits = json.loads(run("search", "savanna animals", "-n", "facts", "--json").output)
    assert hits[0]["metadata"]["_id"] == "d1" and hits[0]["metadata"]["kind"] == "animal"
    notes = json.loads(run("search", "groceries", "-n", "notes", "--json").output)
    assert len(notes) == 1 and notes[0]["metadata"]["source"] == "-"
    assert json.loads(run("search", "x", "-n", "missing", "--json").output) == []


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty or whitespace only"),
        (b"  \n\t", "empty or whitespace only"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary files are not text"),
        (b"caf\xc3\xa9 ok then \xff bad", "invalid UTF-8 at byte offset 14"),
        (b"text with a \x00 inside", "NUL byte at byte offset 12"),
    ],
)
def test_bad_files_one_line_error_store_unchanged(filled, tmp_path, content, match):
    before = json.loads(filled("stats", "--json").output)["records"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    good = tmp_path / "good.txt"
    good.write_text("A perfectly fine file that must not be added alone.")
    r = filled("add", str(good), str(bad))
    line = _one_line_error(r)
    assert r.exit_code == 1 and match in line and "bad.txt" in line
    assert json.loads(filled("stats", "--json").output)["records"] == before


def test_usage_errors_exit_2(filled):
    assert filled("search", "x", "-k", "0").exit_code == 2
    assert filled("search", "x", "-k", "-3").exit_code == 2
    assert filled("add", "x.txt", "--meta", "novalue").exit_code == 2
    assert filled("init", "--method", "pq").exit_code == 2


def test_library_errors_exit_1(run, tmp_path):
    line = _one_line_error(run("search", "x"))
    assert "no store at" in line
    assert run("init", "--bits", "100").exit_code == 1
    assert "multiple of 8" in _one_line_error(run("init", "--bits", "100"))
    assert "above the limit" in _one_line_error(run("init", "--bits", "1024"))
    assert run("init").exit_code == 0
    assert "already exists" in _one_line_error(run("init"))
    assert "no record with id 42" in _one_line_error(run("show", "42"))
    assert "no such file" in _one_line_error(run("add", str(tmp_path / "missing.txt")))


def test_unknown_model(run):
    line = _one_line_error(run("init", "--model", "no-such-org/no-such-model"))
    assert "cannot load embedding model 'no-such-org/no-such-model' offline" in line
    assert not run.store.exists()


def test_corrupted_store(run):
    run.store.write_bytes(b"this is not a database" * 500)
    line = _one_line_error(run("stats"))
    assert "not a hashmem store or is corrupted" in line


def test_store_built_with_another_model_is_refused(filled):
    """The store's recorded model fingerprint differs from what loads: one line, exit 1, intact."""
    import sqlite3

    conn = sqlite3.connect(filled.store)
    cfg = json.loads(conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
    cfg["fingerprint"]["probe"] = [-x for x in cfg["fingerprint"]["probe"]]
    conn.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(cfg),))
    conn.commit()
    conn.close()
    line = _one_line_error(filled("search", "anything"))
    assert "was built with model 'all-MiniLM-L6-v2'" in line and "another model" in line
    assert filled("stats", "--json").exit_code == 0


def test_store_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHMEM_STORE", str(tmp_path / "env.db"))
    r = CliRunner().invoke(cli, ["init", "--bits", "64"], catch_exceptions=False)
    assert r.exit_code == 0 and "env.db" in r.output


def test_help_does_not_import_torch():
    code = "import sys; from hashmem.cli.main import main; sys.argv=['hashmem','--help']\n" \
           "try:\n    main()\nexcept SystemExit:\n    pass\n" \
           "heavy = [m for m in ('torch', 'sentence_transformers', 'llama_cpp', 'faiss', 'numba') if m in sys.modules]\n" \
           "print('HEAVY', heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage: hashmem" in out
    assert "HEAVY []" in out


# -- progress: totals, rates and ETA on a terminal; nothing with --quiet or without one ------------


def _add_with_progress(tmp_path, monkeypatch, *flags, terminal=True):
    from hashmem.cli import group as cli_main

    monkeypatch.setattr(cli_main, "stderr_is_terminal", lambda: terminal)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": f"Observation {i} about the harbour of Lisbon."}) + "\n"
                            for i in range(5)), encoding="utf-8")
    book = tmp_path / "book.txt"
    book.write_text(" ".join(f"Sentence {i} of a long book about ships and sailors." for i in range(60)),
                    encoding="utf-8")
    r = CliRunner().invoke(cli, ["--store", str(tmp_path / "p.db"), *flags, "add", str(rows), str(book),
                                 "--passage-tokens", "40"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_add_shows_the_total_rate_and_eta_on_a_terminal(tmp_path, monkeypatch):
    from hashmem.memory import sources

    out = _add_with_progress(tmp_path, monkeypatch)
    total = sources.count_passages([tmp_path / "rows.jsonl", tmp_path / "book.txt"], passage_tokens=40)
    assert total > 5  # the book is chunked into several passages
    assert f"added {total} passages" in out
    assert "adding: 100%" in out and f"{total}/{total}" in out  # the total is known up front
    assert "passage/s" in out and "<" in out  # rate and the elapsed<remaining (ETA) field


def test_no_bar_with_quiet_or_without_a_terminal(tmp_path, monkeypatch):
    quiet = _add_with_progress(tmp_path, monkeypatch, "--quiet")
    assert "adding" not in quiet and "passage/s" not in quiet and "added" in quiet
    (tmp_path / "p.db").unlink()
    piped = _add_with_progress(tmp_path, monkeypatch, terminal=False)
    assert "adding" not in piped and "passage/s" not in piped and "added" in piped


def test_refit_progress_has_a_total(tmp_path, passages, capsys):
    from hashmem.memory import Memory

    with Memory(tmp_path / "r.db", method="sign", bits=64) as m:
        m.add(passages, progress=False)
        capsys.readouterr()
        m.refit(progress=True)
        err = capsys.readouterr().err
    assert "refitting codes" in err and "8/8" in err and "passage/s" in err


def test_progress_lines_without_a_terminal():
    from hashmem.cli import progress

    assert progress.line(512, 14_468, 11.6) == ("hashmem: 512 of 14,468 passages stored (4 %), 44 passages/s, "
                                                "about 5 min left")
    assert progress.line(90, 100, 9.0).endswith("10 passages/s, about 1 s left")
    said = []
    assert list(progress.reported(range(1500), 1500, said.append, every=3600)) == list(range(1500))
    assert said == ["hashmem: 1,500 passages to embed and store; a progress line every 3600 s (--quiet: none)"]
    said.clear()
    list(progress.reported(range(3), 3, said.append, every=0))
    assert [s.split(" passages stored")[0] for s in said] == ["hashmem: 1 of 3", "hashmem: 2 of 3"]


def test_search_mode_hybrid_and_lexical_weight(filled):
    r = filled("search", "Curie Nobel Prize", "-k", "3", "--json", "--mode", "hybrid", "--lexical-weight", "0.5")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert "Curie" in hits[0]["hints"] and all(0.0 <= h["score"] <= 1.0 for h in hits)
    plain = json.loads(filled("search", "Curie Nobel Prize", "-k", "3", "--json").output)
    zero = json.loads(filled("search", "Curie Nobel Prize", "-k", "3", "--json", "--mode", "hybrid",
                             "--lexical-weight", "0").output)
    assert [h["id"] for h in zero] == [h["id"] for h in plain]
    r = filled("search", "Curie", "--mode", "hybrid", "--lexical-weight", "2")
    assert r.exit_code == 2 and "Traceback" not in r.output
