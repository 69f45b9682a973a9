"""The llm tier with the real GGUF (SmolLM2-135M-Instruct) through llama.cpp: short passages."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("llama_cpp")

from hashmem.cli.main import cli  # noqa: E402
from hashmem.decoders import llmcodec  # noqa: E402
from hashmem.memory import Memory, ModelMismatchError, llmtier  # noqa: E402

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
    assert meta["threads"] == llmcodec.CODEC_THREADS


def test_decode_is_the_same_with_another_thread_count(llm_store):
    path, ids, _ = llm_store
    other = 1 if llmcodec.CODEC_THREADS != 1 else 2
    model = llmcodec.LlamaTokenModel(threads=other)
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
