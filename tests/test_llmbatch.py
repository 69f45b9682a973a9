"""Several llm bodies coded and decoded together (multi-sequence llama.cpp batch), with the real GGUF: short passages."""

from __future__ import annotations

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from hashmem.decoders import llmbatch, llmcodec  # noqa: E402
from hashmem.memory import InputError, Memory, RecordNotFoundError, StoreCorruptError  # noqa: E402
from hashmem.memory.tiers import llm as llmtier  # noqa: E402
from hashmem.memory.tiers import lockstep  # noqa: E402

pytestmark = pytest.mark.slow

TEXTS = [
    "The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War.",
    "Ana is allergic to peanuts.",
    "Mitochondria make most of the cell's ATP through oxidative phosphorylation.",
    "Ünïcode  café — 日本語\n\ttabs,  double  spaces",
]
HINTS = [t.split()[:4] for t in TEXTS]


@pytest.fixture(scope="module", params=[1, 2], ids=["threads1", "threads2"])
def model(request):
    m = llmcodec.LlamaTokenModel(threads=request.param)
    yield m
    m.close()


def test_batch_logits_are_the_single_sequence_logits_bit_for_bit(model):
    tokens = [model.tokenize(t.encode())[:12] for t in TEXTS[:3]]
    prompts = [llmtier.prompt_for(h) for h in HINTS[:3]]
    single = []
    for p, toks in zip(prompts, tokens, strict=True):
        model.start(p)
        rows = [model.logits().copy()]
        for t in toks[:-1]:
            model.feed(t)
            rows.append(model.logits().copy())
        single.append(rows)
    with model.lock:
        model.close_batch()
        batch = model.batch(3, 40)  # one block of cells per sequence, where the single model has N_CTX
        assert batch.cells == llmbatch.CELL_BLOCK < model.max_tokens
        batch.start_many(prompts)
        got = [[batch.logits(s).copy()] for s in range(3)]
        tokens[1] = tokens[1][:5]  # a sequence drops out early; the others go on without it
        for step in range(max(map(len, tokens)) - 1):
            feeds = [(s, toks[step]) for s, toks in enumerate(tokens) if step + 1 < len(toks)]
            batch.feed_many(feeds)
            for s, _ in feeds:
                got[s].append(batch.logits(s).copy())
    for s in range(3):
        assert len(got[s]) == len(tokens[s])
        for a, b in zip(got[s], single[s], strict=False):
            assert np.array_equal(a, b)


def test_bodies_coded_in_a_batch_are_the_bytes_coded_alone_and_decode_either_way(model):
    with model.lock:
        together = lockstep.encode_all(model, TEXTS, HINTS)
        alone = [llmtier.encode_one(model, t, h) for t, h in zip(TEXTS, HINTS, strict=True)]
        assert together == alone and all(together)
        assert model._batch_model is not None  # the batch path ran
        assert model._batch_model.cells <= llmbatch.CELL_BLOCK  # short passages: one block per sequence, not N_CTX
        assert [llmtier.decode_one(model, b, h) for b, h in zip(together, HINTS, strict=True)] == TEXTS
        assert lockstep.decode_all(model, alone, HINTS) == TEXTS


def test_a_passage_past_one_block_of_cells_codes_as_alone_in_a_batch_sized_to_it(model):
    long = " ".join(f"Clause {k}: the tenant pays rent on day {k % 28 + 1} of each month." for k in range(18))  # 319 tokens
    texts, hints = [TEXTS[1], long, TEXTS[0]], [HINTS[1], long.split()[:4], HINTS[0]]
    n_long = len(model.tokenize(long.encode())) + len(model.tokenize(llmtier.prompt_for(hints[1]).encode())) + 1
    assert llmbatch.CELL_BLOCK < n_long < model.max_tokens - llmbatch.CELL_BLOCK
    with model.lock:
        model.close_batch()  # a fresh context, sized by this request
        together = lockstep.encode_all(model, texts, hints)
        cells = model._batch_model.cells
        assert cells == llmbatch.cells_for(n_long, model.max_tokens) and cells % llmbatch.CELL_BLOCK == 0
        assert n_long <= cells < model.max_tokens
        alone = [llmtier.encode_one(model, t, h) for t, h in zip(texts, hints, strict=True)]
        assert together == alone and all(together)
        assert lockstep.decode_all(model, alone, hints) == texts
        assert model._batch_model.cells == cells  # the kept context was big enough: not re-made


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("llmbatch") / "llm.db"
    with Memory(path, fidelity="llm") as mem:
        ids = mem.add(TEXTS + ["x"])  # "x" keeps its text body (no gain from coding one byte)
        assert mem._llm().last_stats.coded >= 3 and mem._llm().last_stats.fallback == {"no_gain": 1}
    return path, ids


def test_recall_many_returns_what_get_returns(store):
    path, ids = store
    with Memory(path) as mem:
        asked = [ids[2], ids[4], ids[0], ids[2], ids[1], ids[3]]  # mixed bodies, a repeat, not in id order
        got = mem.recall_many(asked)
        assert [r.id for r in got] == asked
        assert [r.text for r in got] == [mem.get(i).text for i in asked] == [(TEXTS + ["x"])[ids.index(i)]
                                                                           for i in asked]
        assert [r.hints for r in got] == [mem.get(i).hints for i in asked]
        assert mem.recall_many([]) == []


def test_recall_many_fails_like_get(store):
    path, ids = store
    with Memory(path) as mem:
        missing = max(ids) + 100
        with pytest.raises(RecordNotFoundError) as got_one:
            mem.get(missing)
        with pytest.raises(RecordNotFoundError) as got_many:
            mem.recall_many([ids[0], missing])
        assert str(got_many.value) == str(got_one.value)
        with pytest.raises(InputError, match="iterable"):
            mem.recall_many(ids[0])
        with pytest.raises(InputError):
            mem.recall_many([ids[0], -1])


def test_a_damaged_body_in_a_batch_fails_only_its_own_record(store, tmp_path):
    path, ids = store
    copy = tmp_path / "damaged.db"
    copy.write_bytes(path.read_bytes())
    with Memory(copy) as mem:
        bodies = mem.storage.fetch_texts(ids[:4])
        coded = [i for i in ids[:4] if bodies[i][0] == llmtier.LLM_TAG]
        bad = coded[1]
        body = bytearray(bodies[bad])
        body[-1] ^= 0x55
        with mem.storage.transaction() as c:
            mem.storage.update_texts(c, [bad], [bytes(body)])
        hints = [_hints_of(mem, i) for i in coded]
        got = mem._llm().decode_many([bytes(body) if i == bad else bodies[i] for i in coded], hints)
        for i, g in zip(coded, got, strict=True):
            if i == bad:
                assert isinstance(g, StoreCorruptError) and "cannot be decoded here" in str(g)
            else:
                assert g == TEXTS[ids.index(i)]
        with pytest.raises(StoreCorruptError) as one:
            mem.get(bad)
        with pytest.raises(StoreCorruptError) as many:
            mem.recall_many([coded[0], bad])
        assert str(many.value) == str(one.value)
        assert mem.recall_many([coded[0]])[0].text == TEXTS[ids.index(coded[0])]


def _hints_of(mem, i: int) -> list[str]:
    from hashmem.memory import records

    row = mem.backend.rows([i]).record(i)
    return records.hint_strings(mem, [row.hints])[0]


def test_the_batch_model_grows_and_is_capped():
    m = llmcodec.LlamaTokenModel(threads=1)
    try:
        with m.lock:
            assert m.batch(2).n_seq == 2
            assert m.batch(2) is m.batch(1)
            assert m.batch(99).n_seq == llmbatch.MAX_SEQS
            assert m.batch(2).cells == m.max_tokens  # no length asked: N_CTX cells per sequence
        m.close_batch()
        with m.lock:
            small = m.batch(3, 100)
            assert (small.n_seq, small.cells) == (3, llmbatch.CELL_BLOCK)
            assert m.batch(2, 256) is small  # fits: kept
            grown = m.batch(2, 257)  # more cells: re-made, keeping its sequences
            assert grown is not small and (grown.n_seq, grown.cells) == (3, 2 * llmbatch.CELL_BLOCK)
            more = m.batch(5, 10)  # more sequences: re-made, keeping its cells
            assert (more.n_seq, more.cells) == (5, 2 * llmbatch.CELL_BLOCK)
            assert m.batch(2, 10**6).cells == m.max_tokens  # never above N_CTX
            with pytest.raises(RuntimeError, match="cells"):  # a sequence past its cells fails the batch (lockstep
                m.batch(2).start_many(["x " * (m.max_tokens + 10)] * 2)  # then codes one by one), nothing worse
    finally:
        m.close()


def test_http_recall_and_cli_search_recall_decode_llm_hits_together(store):
    import httpx
    from click.testing import CliRunner

    from hashmem.cli.main import cli
    from hashmem.server.app import create_app, running
    from hashmem.server.service import Service

    path, ids = store
    with Memory(path) as mem:
        service = Service(mem, decoder="extractive")
        with running(create_app(service)) as url, httpx.Client(base_url=url, timeout=300) as c:
            got = c.post("/v1/recall", json={"ids": [ids[1], ids[0], ids[4]]})
            assert got.status_code == 200
            assert [r["text"] for r in got.json()["recalls"]] == [TEXTS[1], TEXTS[0], "x"]
            assert all(r["exact"] for r in got.json()["recalls"])
            missing = c.post("/v1/recall", json={"ids": [ids[0], max(ids) + 100]})
            assert missing.status_code == 404 and str(path) not in missing.text
            hits = c.post("/v1/search", json={"query": "peanuts allergy", "k": 3, "recall": True}).json()
            by_id = dict(zip(ids, TEXTS + ["x"], strict=True))
            assert [h["recall"]["text"] for h in hits["hits"]] == [by_id[h["id"]] for h in hits["hits"]]
    r = CliRunner().invoke(cli, ["--store", str(path), "search", "Westphalia treaty", "-k", "2", "--recall", "--json"])
    assert r.exit_code == 0, r.output
    import json

    rows = json.loads(r.output.splitlines()[-1])
    assert [row["recall"]["text"] for row in rows] == [by_id[row["id"]] for row in rows]
