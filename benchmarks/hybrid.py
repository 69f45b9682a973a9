"""Issue 18's first measurement: hybrid (int8 + BM25 in stage 3) against float32 and binary+int8.

For scifact-train and cranfield, and for a ``hints`` and a ``text`` store of each, one
store is built from cached embeddings (``eval_grid.cached_embeddings``) and ranked by
float32 (exact), binary+int8 (today's search), lexical (BM25 alone, the store's own
terms) and hybrid at several lexical weights; nDCG@10 and recall@100 of each, and the
ratio of nDCG@10 to float32's. Weights are chosen on these two sets only (the issue's
rule): the weight with the best mean ratio per fidelity.

The added cost of hybrid: for the first ``--timed`` queries, binary+int8 and hybrid (at
the store's default weight) search the same query one after the other, ``--rounds``
times; the p50 of the per-query differences is the added milliseconds. On a ``text``
store hybrid is timed twice in the same interleaving: scoring the candidates from the
term index (``memory/termindex.py``, what the store does) and by decoding and tokenizing
their bodies (what a store made before the index does: the index is switched off on the
open handle); ``hybrid-decode@w`` rows are the latter's nDCG.

``--index-terms`` builds one ``text`` store per value of ``termindex.MAX_TERMS`` (the distinct
terms an index entry keeps; 0: all of them) and reports the index's bytes per passage
(``dbstat``: its b-tree pages, row overhead included) with the nDCG of each.

Run (2 shared cores; a few minutes once the embeddings are cached):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hybrid.py [--out benchmarks/results/hybrid.json]
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hybrid.py --weights 0.15 0.4 --index-terms 0 64 48 32 \
        --out benchmarks/results/hybrid_index.json
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
from hashmem.memory import Memory, fusion, termindex  # noqa: E402
from hashmem.memory.embedding.embedder import DEFAULT_MODEL  # noqa: E402

WEIGHTS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)


def scores(run, data) -> dict:
    s = ev.score_run(run, data.qrels)
    return {"ndcg@10": s["ndcg@10"], "recall@100": s["recall@100"]}


def timed(mem, data, queries, qi: int, mode: str) -> float:
    t = time.perf_counter()
    mem.search_embeddings(queries[qi : qi + 1], 10, mode=mode, query_texts=[data.query_texts[qi]])
    return 1000 * (time.perf_counter() - t)


def added_ms(mem, data, queries, n: int, rounds: int) -> dict:
    """p50 ms of binary+int8 and hybrid on the same queries, interleaved, and of their per-query difference
    (on a store with a term index, hybrid from the index and, index off, by decoding bodies)."""
    indexed = mem.backend.has_term_index()
    base, hyb, dec = [], [], []
    for _ in range(rounds):
        for qi in range(min(n, len(data.query_ids))):
            base.append(timed(mem, data, queries, qi, "binary+int8"))
            hyb.append(timed(mem, data, queries, qi, "hybrid"))
            if indexed:
                with index_off(mem):
                    dec.append(timed(mem, data, queries, qi, "hybrid"))
    b, h = np.array(base), np.array(hyb)
    out = {"binary+int8_p50": float(np.median(b)), "hybrid_p50": float(np.median(h)),
           "added_p50": float(np.median(h - b)), "searches": len(b)}
    if dec:
        out.update({"hybrid_decode_p50": float(np.median(dec)), "added_decode_p50": float(np.median(np.array(dec) - b))})
    return out


class index_off:
    """The open handle searches as a store without a term index does (decoding bodies) while inside."""

    def __init__(self, mem) -> None:
        self.backend = mem.backend

    def __enter__(self):
        self.backend.has_term_index = lambda: False

    def __exit__(self, *exc) -> None:
        del self.backend.has_term_index


def index_bytes(mem) -> dict:
    """Bytes of the term index: its b-tree pages (``dbstat``) and its rows' payload, per passage."""
    conn, n = mem.backend.storage.conn, len(mem)
    if not mem.backend.has_term_index() or not n:
        return {}
    pages = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'term_index'").fetchone()[0]
    cols = "length(entry)" if mem.backend.term_format() == 2 else "length(ids) + length(counts) + coalesce(length(numbers), 0)"
    payload = conn.execute(f"SELECT sum({cols}) FROM term_index").fetchone()[0]
    return {"pages_per_passage": pages / n, "payload_per_passage": payload / n}


def one(name: str, fidelity: str, args, max_terms: int | None = None, decode: bool = True) -> dict:
    termindex.MAX_TERMS = max_terms
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
            if decode and mem.backend.has_term_index() and fidelity == "text":
                with index_off(mem):
                    run = ev.run_store(mem, data, queries, mode="hybrid", lexical_weight=w)[0]
                methods[f"hybrid-decode@{w:g}"] = scores(run, data)
        f32 = methods["float32"]["ndcg@10"]
        for row in methods.values():
            row["ratio"] = row["ndcg@10"] / f32
        cost = added_ms(mem, data, queries, args.timed, args.rounds)
        stats = mem.stats().bytes_per_passage
        index = index_bytes(mem)
    out = {"dataset": name, "fidelity": fidelity, "n_docs": len(data.doc_ids), "n_queries": len(data.query_ids),
           "default_weight": fusion.DEFAULT_LEXICAL_WEIGHT[fidelity], "index_max_terms": max_terms,
           "methods": methods, "cost_ms": cost, "bytes_per_passage": stats, "index_bytes": index,
           "ingest_s": ingest_s, "load": os.getloadavg()}
    line = "  ".join(f"{m} {r['ndcg@10']:.4f} ({r['ratio']:.3f})" for m, r in methods.items())
    extra = f" (decode {cost['added_decode_p50']:.2f} ms)" if "added_decode_p50" in cost else ""
    print(f"{name} {fidelity} terms {max_terms}: {line}  added p50 {cost['added_p50']:.2f} ms{extra} "
          f"index {index}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["scifact-train", "cranfield"])
    p.add_argument("--fidelities", nargs="+", default=["hints", "text"])
    p.add_argument("--timed", type=int, default=100, help="queries in the interleaved timing")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS), help="hybrid's lexical weights tried")
    p.add_argument("--index-terms", type=int, nargs="+", default=[termindex.MAX_TERMS or 0],
                   help="termindex.MAX_TERMS of the text stores built (0: every term); the first chooses the weight")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hybrid.json"))
    args = p.parse_args()
    limits = [None if t == 0 else t for t in args.index_terms]
    results = [one(name, fid, args, limit, decode=limit == limits[0]) for fid in args.fidelities
               for limit in (limits if fid != "hints" else [None]) for name in args.datasets]
    best = {}
    for fid in args.fidelities:
        rows = [r for r in results if r["fidelity"] == fid and r["index_max_terms"] == (limits[0] if fid != "hints" else None)]
        mean = {w: float(np.mean([r["methods"][f"hybrid@{w:g}"]["ratio"] for r in rows])) for w in args.weights}
        best[fid] = {"weight": max(mean, key=mean.get), "mean_ratio_by_weight": mean}
    Path(args.out).write_text(json.dumps({"model": DEFAULT_MODEL, "weights": args.weights, "best": best,
                                          "results": results}, indent=1) + "\n")
    print(json.dumps(best), file=sys.stderr)


if __name__ == "__main__":
    main()
