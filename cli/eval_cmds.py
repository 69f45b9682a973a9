"""The eval command: retrieval quality of the store's ranking methods on a BEIR-layout dataset."""

from __future__ import annotations

import json

import click

from .group import cli, show_progress
from .store_cmds import positive

METRIC_DIGITS = 4


@cli.command("eval")
@click.argument("dataset_dir", type=click.Path(path_type=str))
@click.option("--bits", type=int, default=None, help="Code length of the evaluation store (default 256).")
@click.option("--method", type=click.Choice(["itq", "sign", "lsh"]), default=None,
              help="Hashing method of the evaluation store (default itq).")
@click.option("--candidates", type=int, default=None, callback=positive,
              help="Passages reranked with int8 vectors by binary+int8 (default 100).")
@click.option("--namespace-field", default=None, metavar="FIELD",
              help="Query field naming the namespace it searches (LoCoMo: conv); passages are "
                   "stored by their own FIELD, else their id up to the first ':'.")
@click.option("--model", default=None, help="Embedding model of the evaluation store (default all-MiniLM-L6-v2).")
@click.option("--fidelity", type=click.Choice(["hints", "text"]), default=None,
              help="Fidelity of the evaluation store (default hints): hybrid and lexical score its hint "
                   "terms (hints) or its passages' exact words (text).")
@click.option("--lexical-weight", type=click.FloatRange(0.0, 1.0), default=None,
              help="BM25 share of hybrid's blend (default 0.15 on a hints store, 0.4 on a text store).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def eval_(ctx, dataset_dir, bits, method, candidates, namespace_field, model, fidelity, lexical_weight, as_json):
    """Ingest DATASET_DIR's corpus and compare float32, int8, binary, binary+int8, hybrid and lexical search.

    DATASET_DIR is BEIR-layout: corpus.jsonl, queries.jsonl, qrels.tsv. The corpus goes
    into a temporary store, or into the file given with `hashmem --store PATH eval ...`
    (a new or empty store). Reports nDCG@10, recall@5, @10 and @100, MRR@10, ms per query
    (search only) and bytes per passage for each method.
    """
    from hashmem.evaluation.retrieval import evaluate

    result = evaluate(
        dataset_dir,
        store_path=ctx.find_root().obj.get("store"),
        model=model,
        bits=bits,
        method=method,
        candidates=candidates,
        namespace_field=namespace_field,
        fidelity=fidelity,
        lexical_weight=lexical_weight,
        progress=show_progress(ctx),
    )
    if as_json:
        click.echo(json.dumps(rounded(result)))
        return
    for line in format_table(result):
        click.echo(line)


def rounded(result: dict) -> dict:
    """The evaluate() result with metrics to 4 decimals, times and sizes to 3."""
    out = dict(result)
    out["methods"] = {
        m: {k: round(v, METRIC_DIGITS if "@" in k else 3) for k, v in row.items()}
        for m, row in result["methods"].items()
    }
    out["config"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in result["config"].items()}
    if "by_namespace" in result:
        out["by_namespace"] = {
            ns: {m: row if m == "n_queries" else {k: round(v, METRIC_DIGITS) for k, v in row.items()}
                 for m, row in per.items()}
            for ns, per in result["by_namespace"].items()
        }
    return out


def format_table(result: dict) -> list[str]:
    """Lines of a table for people."""
    c = result["config"]
    scope = f", searched within each {c['namespace_field']!r}" if c["namespace_field"] else ""
    lines = [
        f"{result['dataset']}: {result['n_docs']} passages, {result['n_queries']} judged queries{scope}",
        f"store: {c['model']}, {c['bits']}-bit {c['method']} codes (fitted on {c['hasher_fitted_on']}), "
        f"{c['candidates']} candidates, hints {c['mean_hint_bytes']:.1f} B mean, {c['fidelity']} fidelity, "
        f"lexical weight {c['lexical_weight']:g}",
        "",
        f"{'method':<12} {'nDCG@10':>8} {'R@5':>7} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'ms/query':>9} "
        f"{'bytes/passage':>14}",
    ]
    f32 = result["methods"]["float32"]["ndcg@10"]
    for m, row in result["methods"].items():
        rel = f"  ({row['ndcg@10'] / f32:.3f}× float32)" if f32 > 0 and m != "float32" else ""
        lines.append(
            f"{m:<12} {row['ndcg@10']:>8.4f} {row['recall@5']:>7.4f} {row['recall@10']:>7.4f} {row['recall@100']:>7.4f} "
            f"{row['mrr@10']:>7.4f} {row['ms_per_query']:>9.2f} {row['bytes_per_passage']:>14.1f}{rel}"
        )
    if "by_namespace" in result:
        methods = list(result["methods"])
        lines += ["", f"per {c['namespace_field']!r}: recall@5 / recall@10 of each method",
                  f"{'namespace':<12} {'queries':>7} " + " ".join(f"{m:>15}" for m in methods)]
        for ns, per in result["by_namespace"].items():
            cells = " ".join(f"{per[m]['recall@5']:>7.3f}/{per[m]['recall@10']:<7.3f}" for m in methods)
            lines.append(f"{ns:<12} {per['n_queries']:>7} {cells}")
    lines.append("")
    lines.append("bytes/passage: float32 4×dim, int8 dim, binary bits/8, binary+int8 and hybrid bits/8 + dim + "
                 "mean hint bytes, lexical the hint (or text) bytes (metadata and SQLite overhead not counted)")
    return lines
