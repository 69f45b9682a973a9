"""Recency (memory/recency.py): newness by batch order, close ties going to the newer passage, the weight's
checks, and the option through Memory.search, the CLI and HTTP."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hashmem.cli.main import cli
from hashmem.memory import ConfigError, Memory, recency

OLD = "Ana moved to Lisbon to work as a nurse at the city hospital."
NEW = "Ana moved to Porto to work as a nurse at the city hospital."
OTHER = "Honeybees tell their hive mates the direction of flowers with a waggle dance."
QUERY = "Where does Ana work as a nurse?"


@pytest.mark.parametrize(("created", "expected"), [
    ([5.0, 1.0, 3.0], [1.0, 0.0, 0.5]),
    ([2.0, 2.0, 9.0], [0.0, 0.0, 1.0]),  # one batch, one newness
    ([4.0, 4.0], [0.0, 0.0]),
    ([7.0], [0.0]),
    ([], []),
])
def test_newness_is_the_rank_of_the_batch_time(created, expected):
    assert recency.newness(np.array(created)).tolist() == expected


def test_prefer_newer_flips_close_ties_only():
    ids = np.array([1, 2, 3])
    scores = np.array([0.80, 0.795, 0.70], np.float32)
    created = np.array([1.0, 2.0, 3.0])
    order, boosted = recency.prefer_newer(ids, scores, created, 0.0, 3)
    assert order.tolist() == [0, 1, 2]
    order, boosted = recency.prefer_newer(ids, scores, created, 0.02, 2)
    assert order.tolist() == [1, 0]  # 0.795 + 0.01 passes 0.80 + 0; 0.70 + 0.02 stays last
    assert boosted.tolist() == pytest.approx([0.805, 0.80], abs=1e-6)
    order, _ = recency.prefer_newer(ids, np.array([0.80, 0.79, 0.70], np.float32), created, 0.02, 2)
    assert order.tolist() == [0, 1]  # an exact tie after the boost goes to the lower id
    order, _ = recency.prefer_newer(ids, scores, created, 0.2, 3)
    assert order.tolist() == [2, 1, 0]  # a large weight orders by age


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.1", True, None])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ConfigError, match="recency_weight must be a number in"):
        recency.check_weight(bad)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """OLD in a first batch, OTHER and NEW in later ones (each add is its own batch and created time)."""
    path = tmp_path_factory.mktemp("rec") / "r.db"
    with Memory(path) as mem:
        ids = [mem.add([OLD])[0], mem.add([OTHER])[0], mem.add([NEW])[0]]
    return path, ids


def test_search_prefers_the_newer_of_two_close_passages(store):
    path, (old, other, new) = store
    with Memory(path, readonly=True) as mem:
        base = mem.search(QUERY, 3)
        scores = {h.id: h.score for h in base}
        assert abs(scores[old] - scores[new]) < 0.05 and scores[other] < scores[old] - 0.2
        assert mem.get(old).created < mem.get(other).created < mem.get(new).created
        first = base[0].id
        gap = abs(scores[old] - scores[new])
        newer = mem.search(QUERY, 3, recency_weight=gap + 0.01)
        assert newer[0].id == new and newer[1].id == old and newer[2].id == other  # OTHER is far: it stays last
        assert newer[0].score == pytest.approx(scores[new] + gap + 0.01, abs=1e-5)
        tiny = mem.search(QUERY, 3, recency_weight=1e-6)
        assert tiny[0].id == first or gap < 1e-6  # too small to close the gap: the order is kept
        for mode in ("hybrid",):
            assert mem.search(QUERY, 1, mode=mode, recency_weight=0.5)[0].id == new
        assert [h.id for h in mem.search(QUERY, 3, recency_weight=0.0)] == [h.id for h in base]


def test_search_refuses_recency_without_a_stage_3(store):
    path, _ = store
    with Memory(path, readonly=True) as mem:
        for mode in ("binary", "int8"):
            with pytest.raises(ConfigError, match="has none"):
                mem.search(QUERY, 3, mode=mode, recency_weight=0.1)
        assert mem.search(QUERY, 3, mode="int8", recency_weight=0.0)
        with pytest.raises(ConfigError, match="recency_weight"):
            mem.search(QUERY, 3, recency_weight=2)


def test_cli_recency_weight(store):
    path, (old, other, new) = store
    runner = CliRunner()
    r = runner.invoke(cli, ["--store", str(path), "search", QUERY, "-k", "2", "--recency-weight", "0.5", "--json"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert [h["id"] for h in json.loads(r.stdout)] == [new, old]
    r = runner.invoke(cli, ["--store", str(path), "search", QUERY, "--recency-weight", "3"], catch_exceptions=False)
    assert r.exit_code == 2


@pytest.mark.slow
def test_http_recency_weight(store):
    httpx = pytest.importorskip("httpx")
    from hashmem.server.app import create_app, running
    from hashmem.server.service import Service

    path, (old, other, new) = store
    with Memory(path) as mem:
        service = Service(mem, decoder="extractive")
        with running(create_app(service)) as url, httpx.Client(base_url=url, timeout=120) as c:
            for lean in ("application/json",):
                d = c.post("/v1/search", json={"query": QUERY, "k": 2, "recency_weight": 0.5},
                           headers={"content-type": lean}).json()
                assert [h["id"] for h in d["hits"]] == [new, old]
            bad = c.post("/v1/search", json={"query": QUERY, "recency_weight": 2})
            assert bad.status_code == 400
            bad = c.post("/v1/search", json={"query": QUERY, "mode": "binary+int8", "recency_weight": -1})
            assert bad.status_code == 400
