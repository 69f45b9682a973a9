"""The byte budget (``memory/compact.py``): exact bodies demoted to hints-only until a text store fits.

A text store of real SciFact abstracts (fixed random embeddings: the searches compared are the
store's own before and after, so what the vectors mean does not matter; the real embedder checks
the model and embeds the text queries) is built once and copied for each test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA

from hashmem.cli.main import cli
from hashmem.decoders import ExtractiveDecoder
from hashmem.memory import ConfigError, Memory, StoreError, UpkeepWarning

N = 700
QUERIES = np.random.default_rng(1).standard_normal((8, 384)).astype(np.float32)


def _texts(n: int, skip: int = 0) -> list[str]:
    with (DATA / "scifact-train" / "corpus.jsonl").open(encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(n + skip), f, strict=False)][skip:]
    return [f"{d['title']}. {d['text']}".strip() for d in docs]


TEXTS = _texts(N)


def _emb(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("compact") / "text.db"
    with Memory(path, fidelity="text") as mem:
        half = N // 2
        mem.add(TEXTS[:half], embeddings=_emb(N)[:half], metadata=[{"n": i} for i in range(half)])
        mem.add(TEXTS[half:], embeddings=_emb(N)[half:], metadata=[{"n": i} for i in range(half, N)],
                namespace="other")
    return path


@pytest.fixture
def store(pristine, tmp_path):
    path = tmp_path / "text.db"
    shutil.copy(pristine, path)
    return path


def _top(mem) -> list:
    """Vector searches (codes and vectors are untouched by a compaction; a hybrid search of a demoted
    passage scores its hint terms instead of its words: see the last test)."""
    return [[(h.id, h.score, h.hamming) for h in q] for q in mem.search_embeddings(QUERIES, 10)] + \
        [[(h.id, h.score, h.hamming) for h in mem.search("a question about cell biology and proteins", 10,
                                                           namespace="other", mode="binary+int8")]]


def _sizes(mem) -> dict[int, int]:
    got = mem.backend.rows(mem.ids(), ("text",))
    return {int(i): len(b) for i, b in zip(got.ids, got["text"], strict=True)}


def _records(mem) -> tuple:
    got = mem.backend.rows(mem.ids())
    return got.ids.tolist(), {k: list(v) for k, v in got.columns.items()}


def test_budget_met_oldest_first_searches_identical(store):
    with Memory(store) as mem, Memory(store) as other:  # a second handle, open before the compaction
        before = _top(mem)
        size = mem.backend.budget_bytes()
        floor = size - sum(_sizes(mem).values())
        budget = (size + floor) // 2
        done = mem.compact(budget)
        assert done.met and done.bytes_after <= budget < done.bytes_before
        assert 0 < done.demoted < N and done.exact == N - done.demoted
        assert _top(mem) == before == _top(other)  # same ids, scores and Hamming distances
        demoted = [i for i in mem.ids() if mem.get(i).text is None]
        assert demoted == list(range(1, done.demoted + 1))  # the oldest first
        assert other.get(1).text is None and other.get(N).text == TEXTS[N - 1]
        assert mem.stats().fidelities == {"text": N - done.demoted, "hints": done.demoted}
        r = mem.get(1)
        assert r.hints and r.code.shape == (32,) and r.metadata == {"n": 0}
        rebuilt = ExtractiveDecoder(mem).reconstruct(1)
        assert not rebuilt.exact and rebuilt.text and rebuilt.fidelity < 1.0
        kept = ExtractiveDecoder(mem).reconstruct(N)
        assert kept.exact and kept.text == TEXTS[N - 1]
        again = mem.compact(budget)  # already under: nothing more
        assert again.demoted == 0 and again.met
    wal = f"{store}-wal"
    assert os.path.getsize(store) <= budget and (not os.path.exists(wal) or os.path.getsize(wal) == 0)
    subprocess_check = subprocess.run(
        [sys.executable, "-c", "import sys; from hashmem.memory import Memory; m = Memory(sys.argv[1], readonly=True); "
         "print(m.get(1).text is None, m.get(int(sys.argv[2])).text is not None)", str(store), str(N)],
        capture_output=True, text=True, check=True)
    assert subprocess_check.stdout.split() == ["True", "True"]  # another process sees the demotions


def test_recently_read_bodies_go_last_and_a_saved_budget_applies_after_add(store):
    with Memory(store) as mem:
        size = mem.backend.budget_bytes()
        mem.set_byte_budget(size * 10)  # starts keeping last reads; far above the store: nothing yet
        assert mem.byte_budget.max_bytes == size * 10 and mem.byte_budget.namespace is None
        assert mem.get(2).text == TEXTS[1]  # read: its body goes last
    with Memory(store) as mem:  # the read was written at close
        floor = size - sum(_sizes(mem).values())
        done = mem.compact((size + floor) // 2)
        assert done.met and mem.get(2).text == TEXTS[1]
        assert [i for i in range(1, done.demoted + 2) if mem.get(i).text is None] == \
            [i for i in range(1, done.demoted + 2) if i != 2]
        # a saved budget: the next add demotes until the store is back under it
        mem.set_byte_budget(done.bytes_after)
        more = _texts(200, skip=N)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UpkeepWarning)
            mem.add(more, embeddings=_emb(200, seed=3))
        assert mem.backend.budget_bytes() <= done.bytes_after
        assert mem.get(N + 200).text == more[-1]  # the newest keep their text
        mem.set_byte_budget(None)
        assert mem.byte_budget is None


def test_namespace_unmet_budget_and_errors(store):
    with Memory(store) as mem:
        before = _top(mem)
        done = mem.compact(1, namespace="other")  # cannot be met: every body of "other" goes, no other
        assert not done.met and done.exact == 0 and done.demoted == N - N // 2
        assert mem.get(1).text == TEXTS[0] and mem.get(N).text is None
        assert mem.stats().fidelities == {"text": N // 2, "hints": N - N // 2}
        assert _top(mem) == before
        assert mem.compact(1, namespace="nowhere").demoted == 0
        for bad in (0, -5, 1.5, "100", True):
            with pytest.raises(ConfigError, match="max_bytes must be a positive integer"):
                mem.compact(bad)
        with pytest.raises(ConfigError, match="has no byte budget"):
            mem.compact()
    with Memory(store, readonly=True) as ro, pytest.raises(StoreError, match="read-only"):
        ro.compact(10**9)


def test_a_store_that_never_compacts_keeps_its_layout(store, pristine):
    with Memory(store) as mem:
        assert mem.get(1).text == TEXTS[0]  # a read on a writable handle
    conn = sqlite3.connect(store)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "body_access" not in tables and conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    finally:
        conn.close()
    assert open(store, "rb").read() == open(pristine, "rb").read()  # not one byte written by the read


def test_cli_compact(store):
    run = CliRunner().invoke
    assert run(cli, ["--store", str(store), "compact", "--save"]).exit_code == 2
    assert run(cli, ["--store", str(store), "compact", "--clear", "--max-bytes", "5"]).exit_code == 2
    with Memory(store, readonly=True) as mem:
        size = mem.backend.budget_bytes()
    res = run(cli, ["--store", str(store), "compact", "--max-bytes", str(size - 100_000), "--save", "--json"],
              catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["met"] and out["demoted"] > 0 and out["bytes_after"] <= size - 100_000
    stats = run(cli, ["--store", str(store), "stats"], catch_exceptions=False).output
    assert f"kept as     text {N - out['demoted']:,}, hints {out['demoted']:,}" in stats
    res = run(cli, ["--store", str(store), "compact", "--max-bytes", "1"])
    assert res.exit_code == 1 and "NOT met" in res.output
    with Memory(store, readonly=True) as mem:
        assert mem.byte_budget.max_bytes == size - 100_000
    assert run(cli, ["--store", str(store), "compact", "--clear"]).exit_code == 0
    res = run(cli, ["--store", str(store), "compact"])
    assert res.exit_code == 1 and "has no byte budget" in res.output


CHILD = """
import sys
from hashmem.memory import Memory, compact
compact.CHUNK = 1  # one transaction per body: a kill lands between or inside them
m = Memory(sys.argv[1])
print("ready", flush=True)
m.compact(int(sys.argv[2]))
print("done", flush=True)
"""


def test_a_kill_mid_compact_loses_only_demotions(store, tmp_path):
    with Memory(store, readonly=True) as mem:
        records, top = _records(mem), _top(mem)
        budget = mem.backend.budget_bytes() - sum(_sizes(mem).values()) // 2
    whole = tmp_path / "whole.db"
    shutil.copy(store, whole)
    with Memory(whole) as mem:
        final = mem.compact(budget).demoted  # what an uninterrupted compaction demotes
    outcomes = []
    for k in range(24):
        path = tmp_path / f"kill{k}.db"
        shutil.copy(store, path)
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(budget)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(0.004 * 1.4**k)  # 4 ms … 9.6 s
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        with Memory(path) as mem:  # opens: the integrity check runs
            mem.storage.check(bits=mem.config.bits, dim=mem.config.dim, generation=mem.hasher.generation, full=True)
            assert _records(mem) == records  # every record, code, vector, hint and metadata
            texts = [mem.get(i).text for i in mem.ids()]
            assert all(t is None or t == TEXTS[i] for i, t in enumerate(texts))  # exact, or demoted
            assert [i for i, t in enumerate(texts) if t is None] == list(range(sum(t is None for t in texts)))
            outcomes.append(sum(t is None for t in texts))
            assert _top(mem) == top
            assert mem.compact(budget).met  # and it finishes what the killed one started
        if any(0 < x < final for x in outcomes):
            break
    assert any(0 < x < final for x in outcomes), f"no kill landed mid-way: {outcomes} of {final}"


def test_http_compact(store):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from hashmem.server.app import create_app, running
    from hashmem.server.service import Service

    with Memory(store) as mem:
        with running(create_app(Service(mem, decoder="extractive"))) as url, httpx.Client(base_url=url, timeout=60) as c:
            bad = c.post("/v1/compact", json={"max_bytes": 0})
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
            got = c.post("/v1/compact", json={"max_bytes": 1, "namespace": "other"})
            assert got.status_code == 200, got.text
            body = got.json()
            assert body["demoted"] == N - N // 2 and body["met"] is False
            stats = c.get("/v1/stats").json()
            assert stats["fidelities"] == {"text": N // 2, "hints": N - N // 2}
            assert c.post(f"/v1/passages/{N}/recall").json()["exact"] is False
            token = mem.add_key("reader", grants={"default": "read"})
            auth = {"Authorization": f"Bearer {token}"}
            for body in ({"max_bytes": 10**9}, {"max_bytes": 10**9, "namespace": "default"}):
                denied = c.post("/v1/compact", json=body, headers=auth)
                assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"


def _accessed(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM body_access").fetchone()[0]
    finally:
        conn.close()


def test_reads_are_written_in_batches_never_waiting_and_never_by_a_readonly_handle(store):
    from hashmem.memory import access

    with Memory(store) as mem:
        mem.set_byte_budget(10**9)  # the store keeps last reads from now on
    with Memory(store, readonly=True) as ro:
        assert [ro.get(i).text for i in (1, 2)] == TEXTS[:2]
    assert _accessed(store) == 0
    with Memory(store) as mem:
        for i in range(1, access.FLUSH_EVERY + 1):
            mem.get(i)
        assert _accessed(store) == access.FLUSH_EVERY  # written without waiting for close
        mem.get(N)
        blocker = sqlite3.connect(store, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the store
        started = time.perf_counter()
        assert mem._access.flush() is False and time.perf_counter() - started < 5  # gave up at once
        blocker.execute("ROLLBACK")
        blocker.close()
        assert mem._access.flush() is True  # kept, and written on the next try
        assert _accessed(store) == access.FLUSH_EVERY + 1


def test_hybrid_search_of_demoted_passages_scores_their_hints_as_a_hints_store_would(store):
    q = "a question about cell biology and proteins"
    with Memory(store) as mem:
        assert mem.backend.has_term_index() and len(mem.backend.term_entries(mem.ids())) == N
        mem.compact(1, namespace="other")  # every body of "other" goes, with its term index entry
        gone = mem.ids("other")
        assert not mem.backend.term_entries(gone) and len(mem.backend.term_entries(mem.ids("default"))) == N // 2
        # all candidates hint-scored: the default blend is the hints store's (its share, 0.15), not 0.4
        default = mem.search(q, 10, namespace="other")
        assert default == mem.search(q, 10, namespace="other", lexical_weight=0.15)
        assert default != mem.search(q, 10, namespace="other", lexical_weight=0.4)
        assert all(0.0 <= h.score <= 1.0 for h in default)
