"""The Milvus backend against a real Milvus server (the session's ``milvus_server`` fixture).

The backend contract (``backend_contract``) as for the local backend; the URI; settings
and lexicon shared by a second handle; refit generations; the server going away
mid-search and mid-add (one-line errors, nothing acknowledged lost across a restart);
the CLI on a ``milvus://`` store; nDCG on a SciFact subset equal to the local store's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import backend_contract as contract
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import http_add_and_get

from hashmem.memory import (
    AddIncompleteError,
    BackendUnavailableError,
    ConfigError,
    InputError,
    Memory,
    RecordNotFoundError,
    StoreError,
)
from hashmem.memory.backends.base import AfterCommitUpkeep, FileStatistics
from hashmem.memory.backends.milvus.backend import MilvusBackend
from hashmem.memory.backends.milvus.ids import IdAllocator
from hashmem.memory.backends.milvus.uri import parse_uri

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact-train"


@pytest.fixture
def store_uri(milvus_server):
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{milvus_server.uri}/{name}"
    milvus_server.drop_store(name)


@pytest.fixture
def open_mem(store_uri):
    opened = []

    def open_(**kw):
        m = Memory(store_uri, **kw)
        opened.append(m)
        return m

    yield open_
    for m in opened:
        m.close()


# -- no server needed ------------------------------------------------------------------------


def test_parse_uri_defaults_and_options(monkeypatch):
    monkeypatch.delenv("HASHMEM_MILVUS_TOKEN", raising=False)
    o = parse_uri("milvus://db.example/notes")
    assert o["address"] == "http://db.example:19530" and o["collection"] == "notes"
    assert o["index"] == "BIN_FLAT" and not o["secure"] and o["token"] == ""
    o = parse_uri("milvus://ana:s3cr%40t@db.example:443/notes?secure=true&index=bin_ivf_flat&nlist=64&db=prod")
    assert o["address"] == "https://db.example:443" and o["secure"]
    assert (o["user"], o["password"], o["db"], o["index"], o["nlist"]) == ("ana", "s3cr@t", "prod", "BIN_IVF_FLAT", 64)
    assert "s3cr" not in o["location"] and o["location"] == "milvus://ana:***@db.example:443/notes"
    assert parse_uri("milvus+tls://h/c")["secure"]
    monkeypatch.setenv("HASHMEM_MILVUS_TOKEN", "root:Milvus")
    assert parse_uri("milvus://h/c")["token"] == "root:Milvus"
    assert "Milvus" not in parse_uri("milvus://h/c")["location"]


@pytest.mark.parametrize("uri, match", [
    ("milvus://h:1/", "bad collection name"),
    ("milvus://h:1/a/b", "bad collection name"),
    ("milvus://h:1/9lives", "bad collection name"),
    ("milvus:///c", "no host"),
    ("milvus://h:99999/c", "bad port"),
    ("milvus://h/c?index=HNSW", "not supported"),
    ("milvus://h/c?nlist=x", "must be an integer"),
    ("milvus://h/c?colour=red", "unknown option"),
    ("milvus://u:pw@h:99999/c", r"bad port in .milvus://u:\*\*\*@h"),
])
def test_parse_uri_errors(uri, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse_uri(uri)
    assert "pw@" not in str(err.value)


def test_ids_are_unique_increasing_and_in_range():
    a, b = IdAllocator(), IdAllocator()
    ids = a.take(5000) + a.take(1)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert 0 < ids[0] and ids[-1] < 2**63 and ids[-1] <= IdAllocator.bound()
    b.node = (a.node + 1) % 4096
    assert not set(b.take(3000)) & set(ids)


def test_unreachable_server_is_one_line(monkeypatch):
    monkeypatch.setenv("HASHMEM_MILVUS_TIMEOUT", "3")
    t = time.perf_counter()
    with pytest.raises(BackendUnavailableError, match=r"cannot connect to Milvus at milvus://127\.0\.0\.1:9/x") as err:
        Memory("milvus://127.0.0.1:9/x")
    assert "\n" not in str(err.value) and time.perf_counter() - t < 60


# -- the contract, on the real server ----------------------------------------------------------


def test_a_body_over_the_bound_is_refused_whole_and_hints_stores_have_no_body_field(milvus_server, store_uri):
    long = " ".join(f"w{i * 7919 % 10007}" for i in range(60))  # ~330 bytes that zstd cannot shrink to 64
    with Memory(store_uri + "?text_bytes=64", fidelity="text") as mem:
        (first,) = mem.add(["A short note about the river."])
        lex = len(mem.backend.load_lexicon().terms)
        with pytest.raises(InputError, match="at most 64 bytes per passage"):
            mem.add(["Another short one.", long])
        assert mem.ids() == [first] and len(mem.backend.load_lexicon().terms) == lex  # nothing of it stored
        assert mem.get(first).text == "A short note about the river."
        fields = {f["name"]: f for f in mem.backend.client.describe_collection(mem.backend.name)["fields"]}
        assert int(fields["body"]["params"]["max_length"]) == 88  # base64 of 64 bytes, the declared bound
    with pytest.raises(ConfigError, match="text_bytes in the Milvus URI is at most"):
        parse_uri(store_uri + "?text_bytes=50000")
    hints_name = store_uri.rsplit("/", 1)[1] + "_h"
    try:
        with Memory(store_uri + "_h") as mem:
            mem.add(["A hints-only note."])
            fields = mem.backend.client.describe_collection(mem.backend.name)["fields"]
            assert "body" not in {f["name"] for f in fields}
            assert mem.get(mem.ids()[0]).text is None
    finally:
        milvus_server.drop_store(hints_name)


def test_scans_past_one_query_window_go_through_the_iterator_and_read_every_row_once(open_mem, monkeypatch):
    """A scan is one query when its rows fit in Milvus's result window, else the query iterator from the start:
    with a window of 5, 12 records and their lexicon are read whole either way."""
    from hashmem.memory.backends.milvus import scan

    mem = open_mem()
    words = "apples bridges candles dolphins engines forests glaciers harbours islands jungles kettles lanterns".split()
    ids = mem.add([f"a note on the topic of {w}" for w in words], progress=False)
    one_query = sorted(r["id"] for page in mem.backend.records.pages("id > 0", ["id"], batch=4) for r in page)
    terms = sorted(r["term"] for r in mem.backend.lexicon.rows(batch=4))
    calls = []
    monkeypatch.setattr(scan, "QUERY_WINDOW", 5)
    iterator = mem.backend.client.query_iterator
    monkeypatch.setattr(mem.backend.client, "query_iterator", lambda *a, **k: calls.append(k) or iterator(*a, **k),
                        raising=False)
    pages = list(mem.backend.records.pages("id > 0", ["id"], batch=4))
    assert sorted(r["id"] for page in pages for r in page) == one_query == sorted(ids)
    assert all(len(p) <= 4 for p in pages) and len(calls) == 1
    assert sorted(r["term"] for r in mem.backend.lexicon.rows(batch=4)) == terms and len(terms) > 5
    assert len(calls) == 2


@pytest.mark.slow
def test_llm_bodies_round_trip(store_uri):
    pytest.importorskip("llama_cpp")
    from hashmem.memory.tiers import llm as llmtier

    short = ["The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War.",
             "Ana is allergic to peanuts."]
    with Memory(store_uri, fidelity="llm") as mem:
        ids = mem.add(short)
        assert mem._llm().last_stats.coded >= 1
        assert [mem.get(i).text for i in ids] == short
    with Memory(store_uri) as again:  # a second handle: the coder's meta comes from the settings collection
        assert again.config.fidelity == "llm"
        meta = json.loads(again.backend.body_store().get_meta(llmtier.META_KEY))
        assert meta["params"] == llmtier.PARAMS and len(meta["model_sha256"]) == 64
        bodies = again.backend.rows(ids, ("text",))["text"]
        assert any(b[0] == llmtier.LLM_TAG for b in bodies)
        assert [again.get(i).text for i in ids] == short


class TestMilvusBackend(contract.BackendContract):
    """The backend contract (tests/backend_contract.py) on a real Milvus server."""


def test_bin_ivf_flat_index(store_uri):
    """The URI's index option: BIN_IVF_FLAT lists (nprobe = nlist here, so the search is exhaustive)."""
    opened = []

    def open_(**kw):
        opened.append(Memory(store_uri + "?index=BIN_IVF_FLAT&nlist=2&nprobe=2", **kw))
        return opened[-1]

    try:
        contract.check_add_search_get(open_)
        from pymilvus import MilvusClient

        c = MilvusClient(uri=opened[0].backend.opts["address"])
        try:
            described = c.describe_index(opened[0].backend.name, "code")
        finally:
            c.close()
        assert described["index_type"] == "BIN_IVF_FLAT" and described["metric_type"] == "HAMMING"
    finally:
        for m in opened:
            m.close()


def test_missing_store_and_unsupported_settings(store_uri, open_mem):
    with pytest.raises(StoreError, match="no store at"):
        Memory(store_uri, create=False)
    mem = open_mem()
    assert isinstance(mem.backend, MilvusBackend) and not isinstance(mem.backend, AfterCommitUpkeep | FileStatistics)
    assert mem.keys() == [] and mem.key_for("anything") is None
    s = mem.stats()
    assert s.records == 0 and s.file_bytes == 0


# -- failure and restart ---------------------------------------------------------------------


def test_server_going_away_mid_search_and_mid_add_loses_nothing_acknowledged(milvus_server, store_uri, monkeypatch):
    """Stop the server while an add runs: one-line errors; after a restart every acknowledged id is there."""
    monkeypatch.setenv("HASHMEM_MILVUS_TIMEOUT", "5")
    rng = np.random.default_rng(0)
    mem = Memory(store_uri, batch_size=50)
    try:
        dim = mem.config.dim
        texts = [f"passage number {i} about topic {i % 17}" for i in range(3000)]
        emb = rng.standard_normal((len(texts), dim)).astype(np.float32)
        acked: list[int] = []
        outcome: dict = {}

        def load():
            try:
                for s in range(0, len(texts), 50):  # one add per batch: each return is an acknowledgement
                    acked.extend(mem.add(texts[s : s + 50], embeddings=emb[s : s + 50], progress=False))
            except StoreError as e:
                outcome["error"] = e

        t = threading.Thread(target=load)
        t.start()
        while len(acked) < 300 and t.is_alive():
            time.sleep(0.05)
        milvus_server.stop()
        t.join(timeout=300)
        assert not t.is_alive()
        err = outcome.get("error")
        assert err is not None, "the add did not notice the server going away"
        assert isinstance(err, BackendUnavailableError | AddIncompleteError) and "\n" not in str(err)
        with pytest.raises(StoreError) as searching:
            mem.search("topic 3", k=5)
        assert "\n" not in str(searching.value) and "Milvus at milvus://127.0.0.1" in str(searching.value)
        failed = getattr(err, "failed_ids", [])
        cli = subprocess.run([str(Path(sys.executable).parent / "hashmem"), "--store", store_uri, "search", "topic"],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "HASHMEM_MILVUS_TIMEOUT": "5", "HF_HUB_OFFLINE": "1"})
        assert cli.returncode == 1 and cli.stdout == ""
        assert len(cli.stderr.strip().splitlines()) == 1 and "Milvus at milvus://127.0.0.1" in cli.stderr, cli.stderr
    finally:
        mem.close()
        milvus_server.start()
    monkeypatch.setenv("HASHMEM_MILVUS_TIMEOUT", "180")  # a restarted server loads its collections first
    with Memory(store_uri) as again:
        got = again.backend.rows(acked).ids.tolist()
        assert sorted(got) == sorted(acked), f"{len(acked) - len(got)} acknowledged passages lost"
        assert not set(again.backend.rows(failed).ids.tolist()) - set(acked)
        assert again.search("passage number 7 about topic 7", k=3)
        again.add(["after the restart"])  # writable again


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_on_a_milvus_store(store_uri, tmp_path, monkeypatch):
    from hashmem.cli.main import cli

    notes = tmp_path / "notes.txt"
    notes.write_text("Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.\n\n"
                     "The recipe needs two cups of flour, one egg and a pinch of salt.\n", encoding="utf-8")
    run = CliRunner().invoke
    r = run(cli, ["--store", store_uri, "init", "--bits", "128"], catch_exceptions=False)
    assert r.exit_code == 0 and store_uri.split("/")[-1] in r.output
    r = run(cli, ["--store", store_uri, "init"], catch_exceptions=False)
    assert r.exit_code == 1 and "already holds a store" in r.output
    monkeypatch.setenv("HASHMEM_STORE", store_uri)  # the same string through the environment
    r = run(cli, ["add", str(notes), "--meta", "kind=note"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = run(cli, ["search", "Nobel Prize", "-k", "1", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    hit = json.loads(r.output)[0]
    assert "Curie" in hit["hints"] and hit["metadata"]["kind"] == "note"
    r = run(cli, ["show", str(hit["id"])], catch_exceptions=False)
    assert r.exit_code == 0 and "Curie" in r.output
    r = run(cli, ["stats", "--json"], catch_exceptions=False)
    stats = json.loads(r.output)
    assert r.exit_code == 0 and stats["records"] >= 1 and stats["config"]["bits"] == 128
    assert stats["path"] == store_uri and stats["file_bytes"] == 0
    r = run(cli, ["keys", "add", "bot", "--ns", "team=write"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    token = r.output.splitlines()[0].strip()  # printed once, first
    r = run(cli, ["keys", "list"], catch_exceptions=False)
    assert r.exit_code == 0 and "bot" in r.output and "team" in r.output
    r = run(cli, ["keys", "add", "bot", "--ns", "other"], catch_exceptions=False)
    assert r.exit_code == 1 and "exists" in r.output and len(r.output.strip().splitlines()) == 1
    with Memory(store_uri) as m:  # another process sees the key, by its token
        k = m.key_for(token)
        assert k is not None and k.name == "bot" and k.grants == {"team": "write"} and k.active
    r = run(cli, ["keys", "revoke", "bot"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with Memory(store_uri) as m:
        assert not m.key_for(token).active and [k.name for k in m.keys()] == ["bot"]
    r = run(cli, ["keys", "revoke", "bot"], catch_exceptions=False)
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    r = run(cli, ["delete", str(hit["id"])], catch_exceptions=False)
    assert r.exit_code == 0 and "deleted 1" in r.output
    assert json.loads(run(cli, ["stats", "--json"]).output)["records"] == stats["records"] - 1
    with pytest.raises(RecordNotFoundError):
        with Memory(store_uri) as m:
            m.get(hit["id"])
    r = run(cli, ["--store", "milvus://127.0.0.1:9/nothing", "search", "x"], catch_exceptions=False)
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and "cannot connect" in r.output


# -- same results as the local backend ---------------------------------------------------------------


def _scifact_subset(root: Path, n_queries: int = 100, n_docs: int = 1200, chars: int = 400) -> Path:
    """A BEIR-layout subset: the first queries with judgements, their relevant docs, and distractors, each
    abstract cut to its first ``chars`` characters (the real model embeds whole abstracts at ~21 a second on
    two cores; the test compares two stores on the same vectors, not the model)."""
    qrels = [line.rstrip("\n").split("\t") for line in (DATA / "qrels.tsv").open()][1:]
    queries = {json.loads(line)["_id"]: line for line in (DATA / "queries.jsonl").open()}
    keep_q = list(dict.fromkeys(q for q, _, _ in qrels if q in queries))[:n_queries]
    rel = {d for q, d, _ in qrels if q in keep_q}
    docs = [json.loads(line) for line in (DATA / "corpus.jsonl").open()]
    chosen = [d for d in docs if d["_id"] in rel]
    chosen += [d for d in docs if d["_id"] not in rel][: n_docs - len(chosen)]
    root.mkdir()
    (root / "corpus.jsonl").write_text("".join(json.dumps({**d, "text": d["text"][:chars]}) + "\n" for d in chosen))
    (root / "queries.jsonl").write_text("".join(queries[q] for q in keep_q))
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                    + "".join("\t".join(r) + "\n" for r in qrels if r[0] in keep_q))
    return root


@pytest.mark.slow
def test_ndcg_on_scifact_equals_the_local_store(store_uri, tmp_path):
    if not (DATA / "corpus.jsonl").exists():
        pytest.skip(f"SciFact is not at {DATA}")
    from hashmem.evaluation.retrieval import evaluate, load_beir
    from hashmem.memory.embedding.embedder import Embedder

    subset = _scifact_subset(tmp_path / "scifact")
    data = load_beir(subset)
    emb = Embedder()
    docs, queries = emb.encode(data.doc_texts), emb.encode(data.query_texts)
    scores = {}
    for name, where in (("local", str(tmp_path / "local.db")), ("milvus", store_uri)):
        out = evaluate(subset, store_path=where, corpus_embeddings=docs, query_embeddings=queries,
                       methods=["binary+int8"])
        scores[name] = out["methods"]["binary+int8"]["ndcg@10"]
        assert out["config"]["hasher_fitted_on"] == 1024  # the same refit point on both
    assert scores["local"] > 0.5
    assert abs(scores["local"] - scores["milvus"]) <= 0.002, scores


# -- the HTTP server and the decoders on a Milvus store ------------------------------------------------


def test_http_server_and_recall_on_a_milvus_store(open_mem):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from hashmem.server.app import create_app, running
    from hashmem.server.service import Service

    mem = open_mem()
    service = Service(mem, decoder="extractive")
    service.warm_up()
    with running(create_app(service)) as url, httpx.Client(base_url=url, timeout=120) as c:
        assert c.post("/v1/search", json={"query": "bees", "namespace": "scratch"}).status_code == 404
        ids, _ = http_add_and_get(c)
        hits = c.post("/v1/search", json={"query": "bees on a roof", "k": 2, "namespace": "scratch",
                                          "recall": True}).json()["hits"]
        assert hits[0]["id"] == ids[0] and "Lisbon" in json.dumps(hits[0])
        assert c.get("/v1/stats").status_code == 200
        assert c.delete(f"/v1/passages/{ids[0]}").json() == {"deleted": 1}
        assert c.get(f"/v1/passages/{ids[0]}").status_code == 404


def test_http_server_with_api_keys_on_a_milvus_store(open_mem):
    """Tenants on Milvus: the keys live in the engine; a key reads only the namespaces it grants."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from hashmem.server.app import create_app, running
    from hashmem.server.service import Service

    mem = open_mem()
    mem.add(["Ana's locker code is 4417."], namespace="ana")
    mem.add(["Ben's locker code is 9902."], namespace="ben")
    token = mem.add_key("ana-bot", {"ana": "write"})
    service = Service(mem, decoder="extractive")
    service.warm_up()
    with running(create_app(service)) as url, httpx.Client(base_url=url, timeout=120) as c:
        h = {"Authorization": f"Bearer {token}"}
        assert c.post("/v1/search", json={"query": "locker code", "namespace": "ana"}).status_code == 401
        hits = c.post("/v1/search", json={"query": "locker code", "namespace": "ana"}, headers=h).json()["hits"]
        assert hits and all(x["namespace"] == "ana" for x in hits)
        r = c.post("/v1/search", json={"query": "locker code", "namespace": "ben"}, headers=h)
        assert r.status_code in (403, 404) and "9902" not in r.text
        ben_id = mem.ids("ben")[0]
        assert c.get(f"/v1/passages/{ben_id}", headers=h).status_code == 404
        mem.revoke_key("ana-bot")
        deadline = time.monotonic() + 30  # lookups are Bounded: a revocation lands within the staleness bound
        while (status := c.post("/v1/search", json={"query": "locker code", "namespace": "ana"},
                                headers=h).status_code) != 401 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status == 401


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 48, 50, 383, 384, 4098])
def test_varchar_bounds_hold_the_base64_they_are_declared_for(n):
    import base64

    from hashmem.memory.backends.milvus.schema import b64_len

    assert len(base64.b64encode(b"\xff" * n)) <= b64_len(n) <= len(base64.b64encode(b"\xff" * n)) + 4
