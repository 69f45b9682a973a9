"""The llm tier with the real GGUF (SmolLM2-135M-Instruct) through llama.cpp: short passages."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

llama_cpp = pytest.importorskip("llama_cpp")

from hashmem.cli.main import cli  # noqa: E402
from hashmem.decoders import llmcodec  # noqa: E402
from hashmem.decoders import threads as threadpick  # noqa: E402
from hashmem.memory import Memory, ModelMismatchError  # noqa: E402
from hashmem.memory.tiers import llm as llmtier  # noqa: E402

pytestmark = pytest.mark.slow

SHORT = [
    "The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War.",
    "Ünïcode  café — 日本語\n\n\ttabs,  double  spaces; x = f(3) ** 2  ",
    "Ana is allergic to peanuts.",
]


@pytest.fixture(scope="module")
def llm_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("llm") / "llm.db"
    with Memory(path, fidelity="llm") as mem:
        ids = mem.add(SHORT)
        stats = mem._llm().last_stats
    return path, ids, stats


def test_real_model_round_trips_exactly_after_reopen(llm_store):
    path, ids, stats = llm_store
    assert stats.coded >= 2  # SmolLM2 codes ordinary sentences below their zstd body
    with Memory(path) as mem:
        assert [mem.get(i).text for i in ids] == SHORT
        meta = json.loads(mem.storage.get_meta(llmtier.META_KEY))
    assert meta["model_sha256"] == llmcodec.file_sha256(llmcodec.resolve_model(None))
    assert meta["threads"] == "auto"  # chosen per passage; informational


def test_decode_is_the_same_with_another_thread_count(llm_store):
    path, ids, _ = llm_store
    model = llmcodec.LlamaTokenModel(threads=1)
    try:
        with Memory(path, token_model=model) as mem:
            bodies = mem.storage.fetch_texts(ids)
            coded = [i for i in ids if bodies[i][0] == llmtier.LLM_TAG]
            assert coded
            i = min(coded, key=lambda i: len(SHORT[ids.index(i)]))  # 2 threads on busy cores are slow: one
            assert mem.get(i).text == SHORT[ids.index(i)]
    finally:
        model.close()


def test_a_store_coded_under_another_model_is_refused_and_left_unchanged(llm_store, tmp_path):
    path, ids, _ = llm_store
    other = tmp_path / "other.db"
    other.write_bytes(path.read_bytes())
    with Memory(other) as mem, mem.storage.transaction() as c:  # as if written under another GGUF
        meta = json.loads(mem.storage.get_meta(llmtier.META_KEY))
        mem.storage.set_meta(c, llmtier.META_KEY, json.dumps({**meta, "model_sha256": "0" * 64}))
    before = other.read_bytes()
    with Memory(other) as mem, pytest.raises(ModelMismatchError, match="sha256 000000000000"):
        mem.get(ids[0])
    r = CliRunner().invoke(cli, ["--store", str(other), "recall", str(ids[0])])
    assert r.exit_code == 1 and "sha256 000000000000" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert other.read_bytes() == before


def test_cli_init_add_recall_on_an_llm_store(tmp_path):
    store = str(tmp_path / "cli.db")
    run = CliRunner().invoke
    assert run(cli, ["--store", store, "init", "--fidelity", "llm"]).exit_code == 0
    f = tmp_path / "w.txt"
    f.write_text(SHORT[0] + "\n")
    assert run(cli, ["--store", store, "add", str(f)]).exit_code == 0
    r = run(cli, ["--store", store, "recall", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["exact"] is True and out["text"].strip() == SHORT[0] and out["decoder"] == "llm"


@contextlib.contextmanager
def one_core_busy():
    """Another process spinning on one core (``while True: pass``) until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # running before anything is measured
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_with_a_core_kept_busy_the_codec_runs_fewer_threads_and_codes_the_same_bytes(monkeypatch):
    text, hints = SHORT[2], ["Ana", "allergic", "peanuts"]
    fixed = llmcodec.LlamaTokenModel(threads=2)  # the count every store used before #22
    try:
        reference = llmtier.encode_one(fixed, text, hints)
    finally:
        fixed.close()
    monkeypatch.delenv(threadpick.ENV, raising=False)
    model = llmcodec.token_model()
    assert model.threads is None  # adaptive
    with one_core_busy():
        monkeypatch.setattr(threadpick, "_picker", None)  # a fresh process, so its first pick sees the spinner
        body = llmtier.encode_one(model, text, hints)
        during = model.threads_now
        assert llama_cpp.llama_n_threads(model.llm.ctx) == during
        assert llmtier.decode_one(model, body, hints) == text
    assert reference is not None and body == reference
    assert during <= max(1, len(os.sched_getaffinity(0)) - 1)  # never more threads than idle cores


def test_one_loaded_model_switches_its_threads_in_place(monkeypatch):
    monkeypatch.delenv(threadpick.ENV, raising=False)
    model = llmcodec.token_model()
    for n in (2, 1):  # 2 threads on a loaded machine are slow: one prompt only
        monkeypatch.setattr(threadpick, "pick", lambda n=n: n)
        model.start("Keywords: Ana\nText:\n")
        assert llama_cpp.llama_n_threads(model.llm.ctx) == n == model.threads_now
        assert llama_cpp.llama_n_threads_batch(model.llm.ctx) == n


def test_the_env_override_fixes_the_codec_threads(monkeypatch):
    monkeypatch.setenv(threadpick.ENV, "1")
    model = llmcodec.token_model()
    assert model.threads == 1 and model.fingerprint()["threads"] == 1
    monkeypatch.setattr(threadpick, "pick", lambda: pytest.fail("a fixed count does not measure"))
    model.start("Keywords: x\nText:\n")
    assert llama_cpp.llama_n_threads(model.llm.ctx) == 1


def test_a_store_that_recorded_a_thread_count_opens_and_decodes_with_any(llm_store, tmp_path):
    path, ids, _ = llm_store
    old = tmp_path / "old.db"
    old.write_bytes(path.read_bytes())
    with Memory(old) as mem, mem.storage.transaction() as c:  # as written before #22: "threads": 2
        meta = json.loads(mem.storage.get_meta(llmtier.META_KEY))
        mem.storage.set_meta(c, llmtier.META_KEY, json.dumps({**meta, "threads": 2}))
    with Memory(old) as mem:
        assert mem.get(ids[2]).text == SHORT[2]


def test_a_bad_thread_override_is_a_one_line_cli_error(llm_store):
    path, ids, _ = llm_store
    r = CliRunner().invoke(cli, ["--store", str(path), "recall", str(ids[2])], env={threadpick.ENV: "two"})
    assert r.exit_code == 1 and "HASHMEM_LLM_THREADS must be a whole number" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_llm_store_keeps_the_term_index_of_the_exact_words(llm_store):
    from hashmem.memory import fusion, hints, termindex

    path, ids, _ = llm_store
    with Memory(path) as mem:
        assert mem.backend.has_term_index()
        lex = mem.storage.load_lexicon()
        got = mem.backend.term_entries(ids)
        assert [termindex.entry(got[i]) for i in ids] == [termindex.encode(hints.tokenize(t), lex) for t in SHORT]
        assert fusion.hybrid_for(mem, ["westphalia"], 0.4).scores is not None  # the index, no llm body decoded
        assert mem.search("Westphalia 1648", 1, mode="hybrid")[0].id == ids[0]
