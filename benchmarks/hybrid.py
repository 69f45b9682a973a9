"""Issue 18's first measurement: hybrid (int8 + BM25 in stage 3) against float32 and binary+int8.

For scifact-train and cranfield, and for a ``hints`` and a ``text`` store of each, one
store is built from cached embeddings (``eval_grid.cached_embeddings``) and ranked by
float32 (exact), binary+int8 (today's search), lexical (BM25 alone, the store's own
terms) and hybrid at several lexical weights; nDCG@10 and recall@100 of each, and the
ratio of nDCG@10 to float32's. Weights are chosen on these two sets only (the issue's
rule): the weight with the best mean ratio per fidelity.

The added cost of hybrid: for the first ``--timed`` queries, binary+int8 and hybrid (at
the store's default weight) search the same query one after the other, ``--rounds``
times; the p50 of the per-query differences is the added milliseconds.

Run (2 shared cores; a few minutes once the embeddings are cached):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hybrid.py [--out benchmarks/results/hybrid.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from eval_grid import DATA, cached_embeddings  # noqa: E402

from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.memory import Memory, fusion  # noqa: E402
from hashmem.memory.embedding.embedder import DEFAULT_MODEL  # noqa: E402

WEIGHTS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)


def scores(run, data) -> dict:
    s = ev.score_run(run, data.qrels)
    return {"ndcg@10": s["ndcg@10"], "recall@100": s["recall@100"]}


def added_ms(mem, data, queries, n: int, rounds: int) -> dict:
    """p50 ms of binary+int8 and hybrid on the same queries, interleaved, and of their per-query difference."""
    base, hyb = [], []
    for _ in range(rounds):
        for qi in range(min(n, len(data.query_ids))):
            q = queries[qi : qi + 1]
            for mode, out in (("binary+int8", base), ("hybrid", hyb)):
                t = time.perf_counter()
                mem.search_embeddings(q, 10, mode=mode, query_texts=[data.query_texts[qi]])
                out.append(1000 * (time.perf_counter() - t))
    b, h = np.array(base), np.array(hyb)
    return {"binary+int8_p50": float(np.median(b)), "hybrid_p50": float(np.median(h)),
            "added_p50": float(np.median(h - b)), "searches": len(b)}


def one(name: str, fidelity: str, args) -> dict:
    data = ev.load_beir(DATA / name)
    docs, queries = cached_embeddings(data, DEFAULT_MODEL)
    with tempfile.TemporaryDirectory(prefix="hashmem-hybrid-") as tmp, \
            Memory(Path(tmp) / "s.db", fidelity=fidelity) as mem:
        t = time.perf_counter()
        ev.ingest(mem, data, docs, progress=False)
        ingest_s = time.perf_counter() - t
        methods = {"float32": scores(ev.run_exact(data, docs, queries)[0], data),
                   "binary+int8": scores(ev.run_store(mem, data, queries, mode="binary+int8")[0], data),
                   "lexical": scores(ev.run_lexical(mem, data)[0], data)}
        for w in args.weights:
            run = ev.run_store(mem, data, queries, mode="hybrid", lexical_weight=w)[0]
            methods[f"hybrid@{w:g}"] = scores(run, data)
        f32 = methods["float32"]["ndcg@10"]
        for row in methods.values():
            row["ratio"] = row["ndcg@10"] / f32
        cost = added_ms(mem, data, queries, args.timed, args.rounds)
        stats = mem.stats().bytes_per_passage
    out = {"dataset": name, "fidelity": fidelity, "n_docs": len(data.doc_ids), "n_queries": len(data.query_ids),
           "default_weight": fusion.DEFAULT_LEXICAL_WEIGHT[fidelity], "methods": methods, "cost_ms": cost,
           "bytes_per_passage": stats, "ingest_s": ingest_s}
    line = "  ".join(f"{m} {r['ndcg@10']:.4f} ({r['ratio']:.3f})" for m, r in methods.items())
    print(f"{name} {fidelity}: {line}  added p50 {cost['added_p50']:.2f} ms", file=sys.stderr, flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["scifact-train", "cranfield"])
    p.add_argument("--fidelities", nargs="+", default=["hints", "text"])
    p.add_argument("--timed", type=int, default=100, help="queries in the interleaved timing")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS), help="hybrid's lexical weights tried")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hybrid.json"))
    args = p.parse_args()
    results = [one(name, fid, args) for fid in args.fidelities for name in args.datasets]
    best = {}
    for fid in args.fidelities:
        rows = [r for r in results if r["fidelity"] == fid]
        mean = {w: float(np.mean([r["methods"][f"hybrid@{w:g}"]["ratio"] for r in rows])) for w in args.weights}
        best[fid] = {"weight": max(mean, key=mean.get), "mean_ratio_by_weight": mean}
    Path(args.out).write_text(json.dumps({"model": DEFAULT_MODEL, "weights": args.weights, "best": best,
                                          "results": results}, indent=1) + "\n")
    print(json.dumps(best), file=sys.stderr)


if __name__ == "__main__":
    main()
