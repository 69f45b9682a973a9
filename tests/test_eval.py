"""memory.eval: metric known answers, BEIR loading errors, and end-to-end runs with the real embedder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from hashmem.evaluation.retrieval import (
    METHODS,
    METRICS,
    evaluate,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    score_run,
)
from hashmem.memory.errors import ConfigError, InputError

# -- metrics: known answers on hand-made rankings -------------------------------------------

L2 = math.log2(3)  # discount of rank 2


@pytest.mark.parametrize(
    ("ranked", "qrels", "expected"),
    [
        (["a", "b", "c"], {"a": 1}, 1.0),
        (["b", "a", "c"], {"a": 1}, 1 / L2),
        (["b", "a"], {"a": 3, "b": 1}, (1 + 3 / L2) / (3 + 1 / L2)),  # graded, linear gain
        (["a", "b"], {"a": 3, "b": 1}, 1.0),
        (["x", "y"], {"a": 2}, 0.0),
        ([], {"a": 1}, 0.0),
        (["a"], {}, 0.0),  # nothing relevant: 0, not a division by zero
        (["a"], {"a": 0, "b": -1}, 0.0),  # score <= 0 is not relevant
        (["b", "b", "a"], {"a": 1}, 1 / L2),  # a repeated id counts once, at its first rank
    ],
)
def test_ndcg_known_answers(ranked, qrels, expected):
    assert ndcg_at_k(ranked, qrels, 10) == pytest.approx(expected)


def test_ndcg_cutoff_ignores_ranks_past_k():
    ranked = [f"x{i}" for i in range(10)] + ["a"]
    assert ndcg_at_k(ranked, {"a": 1}, 10) == 0.0
    assert ndcg_at_k(ranked, {"a": 1}, 11) == pytest.approx(1 / math.log2(12))


def test_ndcg_ideal_uses_only_top_k_judgements():
    qrels = {f"d{i}": 1 for i in range(12)}
    ranked = [f"d{i}" for i in range(10)]
    assert ndcg_at_k(ranked, qrels, 10) == pytest.approx(1.0)


def test_recall_and_mrr_known_answers():
    qrels = {"a": 1, "b": 2, "c": 1, "z": 0}
    ranked = ["z", "a", "x", "b"]
    assert recall_at_k(ranked, qrels, 1) == 0.0
    assert recall_at_k(ranked, qrels, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, qrels, 100) == pytest.approx(2 / 3)
    assert mrr_at_k(ranked, qrels, 10) == pytest.approx(1 / 2)  # "z" has score 0: not relevant
    assert mrr_at_k(ranked, qrels, 1) == 0.0
    assert mrr_at_k([], qrels, 10) == 0.0
    assert recall_at_k(["a"], {}, 10) == 0.0


def test_score_run_averages_over_judged_queries_and_missing_runs_score_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": ["a"]}  # q2 never retrieved
    scores = score_run(run, qrels)
    assert set(scores) == set(METRICS)
    assert scores["ndcg@10"] == pytest.approx(0.5)
    assert scores["mrr@10"] == pytest.approx(0.5)
    assert scores["recall@100"] == pytest.approx(0.5)
    deep = score_run({"q1": [f"x{i}" for i in range(7)] + ["a"], "q2": ["y", "b"]}, qrels)
    assert deep["recall@5"] == pytest.approx(0.5) and deep["recall@10"] == pytest.approx(1.0)  # a at rank 8
    with pytest.raises(InputError, match="no judged queries"):
        score_run(run, {})


# -- a tiny BEIR dataset ---------------------------------------------------------------------

DOCS = [
    ("Boeing 747", "The jumbo jet carries over four hundred passengers across the Atlantic."),
    ("Hypersonic flow", "Aerodynamic heating of slender cones was measured in a shock tunnel at Mach 8."),
    ("Alice", "Alice followed the white rabbit down the hole into Wonderland."),
    ("Library budget", "The city council approved 3.5 million dollars for a new public library."),
    ("Photosynthesis", "Plants convert sunlight, water and carbon dioxide into glucose and oxygen."),
    ("Marie Curie", "She won Nobel Prizes in physics and chemistry for research on radioactivity."),
    ("Pancakes", "Whisk flour, milk and eggs, then fry the batter in a hot buttered pan."),
    ("Garbage collection", "Python frees objects when their reference count drops to zero."),
    ("Volcanoes", "Magma rises through the crust and erupts as lava and ash."),
    ("Chess", "The queen is the most powerful piece; checkmate ends the game."),
    ("Coffee", "Espresso is brewed by forcing hot water through finely ground coffee beans."),
    ("Tides", "The gravitational pull of the moon causes the ocean tides to rise and fall."),
    ("Bicycles", "Oil the chain and check tyre pressure before a long bike ride."),
    ("Honeybees", "Worker bees collect nectar and pollen and dance to share where flowers are."),
    ("Black holes", "Not even light escapes the event horizon of a black hole."),
    ("Vaccines", "A vaccine trains the immune system to recognise a virus without causing disease."),
    ("Jazz", "Improvisation and swing rhythm are at the heart of jazz music."),
    ("Mount Everest", "The highest mountain on Earth rises 8,849 metres in the Himalaya."),
    ("Penguins", "Emperor penguins huddle together to survive the Antarctic winter."),
    ("Tax returns", "File your income tax return before the April deadline to avoid penalties."),
    ("Sourdough", "A sourdough starter of wild yeast makes the bread rise slowly."),
    ("Earthquakes", "Tectonic plates slipping along a fault release seismic waves."),
    ("Solar panels", "Photovoltaic cells turn sunlight directly into electricity."),
    ("Roman empire", "Augustus became the first emperor of Rome in 27 BC."),
    ("Knitting", "Cast on stitches and knit each row with two needles and wool yarn."),
    ("Sleep", "Adults need seven to nine hours of sleep for good health."),
    ("Dinosaurs", "An asteroid impact wiped out the dinosaurs 66 million years ago."),
    ("Compilers", "A compiler translates source code into machine instructions."),
    ("Olympics", "The modern Olympic Games began in Athens in 1896."),
    ("Coral reefs", "Warming oceans bleach coral reefs and kill the algae they depend on."),
]
QUERIES = [  # (query, {doc index: graded score})
    ("How do plants make sugar from light?", {4: 2, 22: 1}),
    ("What makes the sea level go up and down every day?", {11: 2}),
    ("How tall is the world's highest peak?", {17: 2}),
    ("When did the dinosaurs die out?", {26: 2}),
    ("How is an espresso made?", {10: 2}),
    ("Which scientist studied radioactivity?", {5: 2}),
    ("recipe for pancakes", {6: 2, 20: 1}),
    ("When were the first modern Olympics held?", {28: 2}),
    ("How does memory get freed in Python?", {7: 2, 27: 1}),
    ("Why do earthquakes happen?", {21: 2, 8: 1}),
]


def write_beir(root: Path, docs, queries, qrels, *, skip: tuple[str, ...] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if "corpus.jsonl" not in skip:
        (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    if "queries.jsonl" not in skip:
        (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    if "qrels.tsv" not in skip:
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in qrels]
        (root / "qrels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    docs = [{"_id": f"d{i}", "title": t, "text": x} for i, (t, x) in enumerate(DOCS)]
    docs.append({"_id": "empty", "title": "", "text": ""})  # real data has these (cranfield 471)
    queries = [{"_id": f"q{j}", "text": q} for j, (q, _) in enumerate(QUERIES)]
    queries.append({"_id": "unjudged", "text": "a query nobody judged"})
    qrels = [(f"q{j}", f"d{i}", s) for j, (_, rel) in enumerate(QUERIES) for i, s in rel.items()]
    qrels.append(("unjudged", "d0", 0))
    return write_beir(tmp_path_factory.mktemp("tiny") / "tiny", docs, queries, qrels)


@pytest.fixture(scope="module")
def conversations(tmp_path_factory) -> Path:
    """Two conversations with the same turns: only the namespace tells the copies apart.

    conv-b comes first in the file, so without namespaces its copies win every tie.
    """
    docs = []
    for conv in ("conv-b", "conv-a"):
        for i, (_, text) in enumerate(DOCS[:12]):
            docs.append({"_id": f"{conv}:D1:{i}", "title": "", "text": text})
    queries, qrels = [], []
    for conv in ("conv-a", "conv-b"):
        for j, (q, rel) in enumerate(QUERIES):
            if not any(i < 12 for i in rel):
                continue
            qid = f"{conv}:q{j}"
            queries.append({"_id": qid, "text": q, "conv": conv})
            qrels += [(qid, f"{conv}:D1:{i}", s) for i, s in rel.items() if i < 12]
    return write_beir(tmp_path_factory.mktemp("conv") / "conv", docs, queries, qrels)


def test_load_beir_reads_titles_skips_empty_passages_and_unjudged_queries(tiny):
    data = load_beir(tiny)
    assert data.name == "tiny"
    assert len(data.doc_ids) == len(DOCS) and data.empty_passages == 1
    assert data.doc_texts[0] == f"{DOCS[0][0]} {DOCS[0][1]}"
    assert data.query_ids == [f"q{j}" for j in range(len(QUERIES))]
    assert data.unjudged_queries == 1
    assert data.qrels["q0"] == {"d4": 2, "d22": 1}
    assert set(data.doc_namespaces) == {"default"}


def test_load_beir_namespaces_from_field_or_id_prefix(conversations):
    data = load_beir(conversations, namespace_field="conv")
    assert data.doc_namespaces[0] == "conv-b" and data.doc_namespaces[-1] == "conv-a"  # from ids
    assert data.query_namespaces[0] == "conv-a"


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels.tsv"])
def test_missing_file_is_an_input_error(tmp_path, missing):
    root = write_beir(tmp_path / "ds", [{"_id": "d0", "text": "x"}], [{"_id": "q0", "text": "y"}],
                      [("q0", "d0", 1)], skip=(missing,))
    with pytest.raises(InputError, match=f"no {missing}"):
        load_beir(root)


@pytest.mark.parametrize(
    ("docs", "queries", "qrels", "match"),
    [
        ([{"_id": "d0", "text": "x"}], [{"_id": "q0", "text": "y"}], [("q0", "d9", 1)], "passage 'd9' is not in"),
        ([{"_id": "d0", "text": "x"}], [{"_id": "q0", "text": "y"}], [("q9", "d0", 1)], "query 'q9' is not in"),
        ([{"_id": "d0", "text": "x"}], [{"_id": "q0", "text": "y"}], [("q0", "d0", 0)], "judges none"),
        ([{"_id": "d0", "text": "x"}, {"_id": "d0", "text": "z"}], [{"_id": "q0", "text": "y"}],
         [("q0", "d0", 1)], "repeats passage ids"),
        ([{"text": "x"}], [{"_id": "q0", "text": "y"}], [("q0", "d0", 1)], "no \"_id\""),
        ([{"_id": "d0", "text": ""}], [{"_id": "q0", "text": "y"}], [("q0", "d0", 1)], "holds no passages"),
    ],
)
def test_bad_dataset_rows(tmp_path, docs, queries, qrels, match):
    root = write_beir(tmp_path / "ds", docs, queries, qrels)
    with pytest.raises(InputError, match=match):
        load_beir(root)


def test_query_without_namespace_field(tmp_path):
    root = write_beir(tmp_path / "ds", [{"_id": "c:d0", "text": "x"}], [{"_id": "q0", "text": "y"}],
                      [("q0", "c:d0", 1)])
    with pytest.raises(InputError, match="no 'conv' field"):
        load_beir(root, namespace_field="conv")


def test_not_a_directory(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        load_beir(tmp_path / "nope")


# -- end to end with the real embedder --------------------------------------------------------


@pytest.mark.slow
def test_evaluate_searches_each_query_only_in_its_namespace(conversations):
    result = evaluate(conversations, namespace_field="conv", return_runs=True, progress=False)
    judged = sum(any(i < 12 for i in rel) for _, rel in QUERIES)
    assert judged >= 5
    assert result["n_docs"] == 24 and result["n_queries"] == 2 * judged
    for method in METHODS:
        for qid, ranked in result["runs"][method].items():
            conv = qid.split(":")[0]
            assert ranked, (method, qid)
            assert all(d.startswith(conv + ":") for d in ranked), (method, qid, ranked)
            assert len(ranked) == 12  # the whole conversation, never more
    # with the right scope, the copies in the other conversation cannot steal the hits
    assert result["methods"]["float32"]["mrr@10"] > 0.8
    assert result["methods"]["binary+int8"]["mrr@10"] > 0.8
    # each conversation's own figures: its queries alone, and they average to the whole
    per = result["by_namespace"]
    assert sorted(per) == ["conv-a", "conv-b"]
    assert sum(p["n_queries"] for p in per.values()) == result["n_queries"]
    for method in METHODS:
        for metric in ("recall@5", "recall@10"):
            mean = sum(p[method][metric] * p["n_queries"] for p in per.values()) / result["n_queries"]
            assert mean == pytest.approx(result["methods"][method][metric])


@pytest.mark.slow
def test_eval_cli_json_end_to_end(tiny):
    from hashmem.cli.main import cli

    res = CliRunner().invoke(cli, ["eval", str(tiny), "--json", "--bits", "128", "--method", "sign"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"dataset", "n_docs", "n_queries", "config", "methods"}
    assert (out["dataset"], out["n_docs"], out["n_queries"]) == ("tiny", len(DOCS), len(QUERIES))
    assert out["config"]["bits"] == 128 and out["config"]["method"] == "sign"
    assert out["config"]["candidates"] == 100
    assert list(out["methods"]) == list(METHODS)
    for method, row in out["methods"].items():
        assert set(row) == {*METRICS, "ms_per_query", "bytes_per_passage"}, method
        assert all(0.0 <= row[m] <= 1.0 for m in METRICS), (method, row)
        assert row["ms_per_query"] >= 0.0
        assert row["recall@100"] >= row["recall@10"]
    m = out["methods"]
    # the queries were written to be easy: the exact search must find nearly everything
    assert m["float32"]["ndcg@10"] > 0.75 and m["float32"]["mrr@10"] > 0.8
    # int8 loses almost nothing; with 30 passages and 100 candidates every passage is reranked,
    # so the store's search ranks exactly like exhaustive int8
    assert abs(m["int8"]["ndcg@10"] - m["float32"]["ndcg@10"]) < 0.05
    assert m["binary+int8"]["ndcg@10"] == pytest.approx(m["int8"]["ndcg@10"])
    dim = 384
    assert m["float32"]["bytes_per_passage"] == 4 * dim
    assert m["int8"]["bytes_per_passage"] == dim
    assert m["binary"]["bytes_per_passage"] == 128 / 8
    hints = out["config"]["mean_hint_bytes"]
    assert 0 < hints <= out["config"]["hint_bytes"]
    assert m["binary+int8"]["bytes_per_passage"] == pytest.approx(16 + dim + hints, abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("fidelity", ["hints", "text"])
def test_eval_hybrid_and_lexical_on_the_store_fidelity(tiny, fidelity):
    from hashmem.cli.main import cli

    args = ["eval", str(tiny), "--json", "--fidelity", fidelity, "--lexical-weight", "0"]
    out = json.loads(CliRunner().invoke(cli, args, catch_exceptions=False).stdout)
    assert out["config"]["fidelity"] == fidelity and out["config"]["lexical_weight"] == 0.0
    m = out["methods"]
    assert m["hybrid"]["ndcg@10"] == pytest.approx(m["binary+int8"]["ndcg@10"])  # no lexical share: same ranking
    assert m["lexical"]["ndcg@10"] > 0.3  # BM25 alone finds the written-to-be-easy answers
    assert m["hybrid"]["bytes_per_passage"] == m["binary+int8"]["bytes_per_passage"]
    text = out["config"]["mean_text_bytes"]
    assert (text > 0) == (fidelity == "text")
    assert m["lexical"]["bytes_per_passage"] == (text if fidelity == "text" else out["config"]["mean_hint_bytes"])
    table = CliRunner().invoke(cli, args[:2] + args[3:], catch_exceptions=False).stdout
    assert "hybrid" in table and "lexical" in table and f"{fidelity} fidelity" in table


@pytest.mark.slow
def test_eval_cli_table_and_store_option(tiny, tmp_path):
    from hashmem.cli.main import cli

    store = tmp_path / "eval.db"
    res = CliRunner().invoke(cli, ["--store", str(store), "eval", str(tiny), "--candidates", "20"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "binary+int8" in res.stdout and "nDCG@10" in res.stdout and "20 candidates" in res.stdout
    assert store.exists()
    # the store now holds the corpus: eval refuses to ingest it twice
    res = CliRunner().invoke(cli, ["--store", str(store), "eval", str(tiny)], catch_exceptions=False)
    assert res.exit_code == 1
    assert "already holds 30 passages" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_eval_cli_namespace_field(conversations):
    from hashmem.cli.main import cli

    res = CliRunner().invoke(cli, ["eval", str(conversations), "--namespace-field", "conv", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["config"]["namespace_field"] == "conv" and out["n_docs"] == 24
    assert all(set(p) == {"n_queries", *out["methods"]} for p in out["by_namespace"].values())
    table = CliRunner().invoke(cli, ["eval", str(conversations), "--namespace-field", "conv"], catch_exceptions=False)
    assert "per 'conv': recall@5 / recall@10" in table.output
    assert all(f"\n{ns} " in table.output for ns in out["by_namespace"])
    # scoped to its conversation, every query finds its own copy first
    assert out["methods"]["float32"]["mrr@10"] > 0.8
    # unscoped, conv-b's copies (stored first) win the ties for every conv-a query
    res = CliRunner().invoke(cli, ["eval", str(conversations), "--json"], catch_exceptions=False)
    unscoped = json.loads(res.stdout)
    assert unscoped["methods"]["float32"]["mrr@10"] < out["methods"]["float32"]["mrr@10"] - 0.2


def test_eval_cli_bad_dataset_is_one_line_exit_1(tmp_path):
    from hashmem.cli.main import cli

    root = write_beir(tmp_path / "ds", [{"_id": "d0", "text": "x"}], [{"_id": "q0", "text": "y"}],
                      [("q0", "d0", 1)], skip=("qrels.tsv",))
    for target in (root, tmp_path / "nowhere"):
        res = CliRunner().invoke(cli, ["eval", str(target)], catch_exceptions=False)
        assert res.exit_code == 1
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), res.output


def test_eval_cli_bad_candidates_is_usage_error(tiny):
    from hashmem.cli.main import cli

    res = CliRunner().invoke(cli, ["eval", str(tiny), "--candidates", "0"], catch_exceptions=False)
    assert res.exit_code == 2


def test_evaluate_rejects_bad_settings_before_loading_a_model(tiny):
    with pytest.raises(ConfigError, match="candidates"):
        evaluate(tiny, candidates=0)
    with pytest.raises(ConfigError, match="multiple of 8"):
        evaluate(tiny, bits=100)
    with pytest.raises(ConfigError, match="subset of float32"):
        evaluate(tiny, methods=["float32", "bm25"])
    with pytest.raises(ConfigError, match="subset of float32"):
        evaluate(tiny, methods=[])
