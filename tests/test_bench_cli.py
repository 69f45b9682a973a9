"""`hashmem bench`: the JSON shape, the table, bad options, and the trade-off plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hashmem.cli.main import cli
from hashmem.evaluation import bench


def test_bench_json_shape():
    r = CliRunner().invoke(cli, ["bench", "--n", "30000", "--bits", "128", "--k", "50", "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"n", "bits", "brute", "sublinear", "faiss_ratio", "rss_bytes_per_passage"} <= set(out)
    assert out["n"] == 30000 and out["bits"] == 128
    assert set(out["brute"]) >= {"ms_per_query", "qps"}
    assert set(out["sublinear"]) >= {"ms_per_query", "qps", "recall"}
    assert 0.5 <= out["sublinear"]["recall"] <= 1.0
    assert out["brute"]["qps"] == pytest.approx(1000 / out["brute"]["ms_per_query"])
    assert out["rss_bytes_per_passage"] >= 0


def test_bench_table_and_bad_options():
    r = CliRunner().invoke(cli, ["bench", "--n", "5000", "--bits", "64", "--k", "20", "--batch", "8"],
                           catch_exceptions=False)
    assert r.exit_code == 0 and "ms/query" in r.output and "recall" in r.output
    r = CliRunner().invoke(cli, ["bench", "--bits", "100"])
    assert r.exit_code == 2 and "multiple of 8" in r.output
    r = CliRunner().invoke(cli, ["bench", "--n", "0"])
    assert r.exit_code == 2


def test_tradeoff_rows_and_plot(tmp_path):
    mix = bench.parametric_mixture(dim=64, clusters=16)
    rng = np.random.default_rng(0)
    corpus, queries = bench.draw(mix, 3000, rng), bench.draw(mix, 30, rng)
    rows = bench.tradeoff(corpus, queries, bits_grid=(32, 64), candidates_grid=(10, 100))
    assert [(r["bits"], r["candidates"]) for r in rows] == [(32, 10), (32, 100), (64, 10), (64, 100)]
    by = {(r["bits"], r["candidates"]): r["recall"] for r in rows}
    assert by[(64, 100)] >= by[(32, 10)] and by[(64, 100)] > 0.8  # more bits and candidates: better
    assert rows[0]["disk_bytes"] == 32 // 8 + 64
    png = tmp_path / "t.png"
    bench.plot_tradeoff(rows, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_plot_needs_enough_vectors(mem, store_path, tmp_path):
    """--plot without --data uses the store's vectors; 8 passages are too few: a one-line error, exit 1."""
    mem.close()
    r = CliRunner().invoke(cli, ["--store", str(store_path), "bench", "--n", "2000", "--k", "10",
                                 "--plot", str(tmp_path / "p.png")])
    assert r.exit_code == 1 and "needs at least 1,000" in r.output
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("ivf_from", [1_000, 10**9])  # the store partitions at this size / never
def test_end_to_end_is_the_stores_search(monkeypatch, ivf_from):
    from hashmem.memory.backends.local import index as index_mod

    monkeypatch.setattr(index_mod, "IVF_MIN_ROWS", ivf_from)
    mix = bench.parametric_mixture(dim=64, clusters=16)
    rng = np.random.default_rng(3)
    real, queries = bench.draw(mix, 500, rng), bench.draw(mix, 12, rng)
    e = bench.end_to_end(real, queries, 3000, 64, candidates=20, min_seconds=0.01)
    assert e["n"] == 3000 and e["real_passages"] == 500 and e["queries"] == 12
    assert e["store_uses_ivf"] is (ivf_from == 1_000)
    assert 0.3 < e["recall_at_10_brute"] <= 1.0 and 0.0 <= e["recall_at_10_store"] <= 1.0
    assert e["loss"] == pytest.approx(e["recall_at_10_brute"] - e["recall_at_10_store"])
    if e["store_uses_ivf"]:
        assert 0 < e["nprobe"] <= e["nlist"] and 0.0 < e["hamming_recall"] <= 1.0
    else:
        assert e["loss"] == 0.0 and e["hamming_recall"] == 1.0 and e["nlist"] is None


def test_bench_end_to_end_from_the_store(filled_store):
    r = CliRunner().invoke(cli, ["--store", str(filled_store), "bench", "--n", "3000", "--bits", "64",
                                 "--k", "20", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"n", "bits", "brute", "sublinear", "faiss_ratio", "rss_bytes_per_passage"} <= set(out)  # kept
    e = out["end_to_end"]
    assert e["real_passages"] == 1000 - 200 and e["queries"] == 200 and "this store" in e["source"]
    assert 0.0 <= e["recall_at_10_store"] <= 1.0


def test_bench_without_real_passages_says_so(tmp_path):
    r = CliRunner().invoke(cli, ["--store", str(tmp_path / "none.db"), "bench", "--n", "3000", "--k", "20"],
                           catch_exceptions=False)
    assert r.exit_code == 0 and "end to end   - (give --data DIR" in r.output
    assert not (tmp_path / "none.db").exists()


@pytest.fixture
def filled_store(tmp_path):
    """A store of 1,000 short real-model passages (the embeddings are random: bench reads int8 vectors only)."""
    from hashmem.memory import Memory

    path = tmp_path / "b.db"
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((1000, 384)).astype(np.float32)
    with Memory(path) as m:
        m.add([f"passage number {i}" for i in range(1000)], embeddings=emb, progress=False)
    return path
