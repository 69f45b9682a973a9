"""Issue 18's choice: hybrid re-scoring the dense candidates only, or also BM25's own top candidates from the index.

For scifact-train and cranfield, one ``text`` store each (cached embeddings,
``eval_grid.cached_embeddings``). For every query, stage 1 and 2 of ``search.rank`` give
the C = 100 dense candidates (Hamming, then the asymmetric step); BM25 over every passage
of the store, from its term index (``termindex.scores`` over all entries: the ranking an
inverted index would give, IDF from the lexicon, ``avgdl`` over all passages), gives its
own top ``--bm25-top``. Stage 3 of hybrid (``search.rerank_hybrid``, the product's code:
int8 cosine and BM25 of each candidate, blended at the text default weight) then ranks

- ``dense``: the dense candidates alone (what ``mode="hybrid"`` does; checked equal to
  ``Memory.search_embeddings``' ranking),
- ``dense+bm25``: those plus BM25's top candidates not among them,

and nDCG@10 and recall@100 of each are reported, with BM25 alone and float32 for scale,
and how many candidates the union adds per query.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hybrid_candidates.py --out benchmarks/results/hybrid_candidates.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from eval_grid import DATA, cached_embeddings  # noqa: E402

from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.memory import Memory, fusion, search, termindex  # noqa: E402
from hashmem.memory.config import DEFAULT_CANDIDATES  # noqa: E402
from hashmem.memory.embedding.embedder import DEFAULT_MODEL  # noqa: E402


def dense_candidates(mem, q: np.ndarray, namespace: str) -> search.Candidates:
    """Stages 1 and 2 of ``search.rank`` for one query: the C dense candidates."""
    proj = mem.hasher.project(q[None, :])[0]
    code = np.packbits(proj > 0)
    c = DEFAULT_CANDIDATES
    cands = mem.backend.candidates(namespace, code, c * search.ASYMMETRIC_FACTOR, generation=mem.hasher.generation,
                                   query_proj=proj, query_vec=q)
    return search.asymmetric(mem.backend, proj, cands, c, mem.hasher.bits)


def one(name: str, args) -> dict:
    data = ev.load_beir(DATA / name)
    docs, queries = cached_embeddings(data, DEFAULT_MODEL)
    with tempfile.TemporaryDirectory(prefix="hashmem-cands-") as tmp, \
            Memory(Path(tmp) / "s.db", fidelity="text") as mem:
        ev.ingest(mem, data, docs, progress=False)
        weight = fusion.DEFAULT_LEXICAL_WEIGHT["text"]
        side = fusion.hybrid_for(mem, data.query_texts, weight)
        lexicon = mem.lexicon
        runs: dict[str, dict] = {"dense": {}, "dense+bm25": {}, "bm25": {}}
        added, same = [], 0
        store_run = ev.run_store(mem, data, queries, mode="hybrid", lexical_weight=weight)[0]
        by_ns: dict[str, list[int]] = {}
        for qi, ns in enumerate(data.query_namespaces):
            by_ns.setdefault(ns, []).append(qi)
        for ns, qis in by_ns.items():
            all_ids = mem.backend.select(ns)
            got = mem.backend.term_entries(all_ids)
            entries = [termindex.entry(got[int(i)]) for i in all_ids]
            names = dict(zip(all_ids.tolist(), (m["_id"] for m in mem.backend.rows(all_ids, ("metadata",))["metadata"]),
                             strict=True))
            for qi in qis:
                bm = termindex.scores(side.queries[qi], entries, lexicon, side.weights[qi])  # [n_ns]
                top = all_ids[np.lexsort((all_ids, -bm))[: args.bm25_top]]
                runs["bm25"][data.query_ids[qi]] = [names[int(i)] for i in top[: ev.RETRIEVE]]
                cands = dense_candidates(mem, queries[qi], ns)
                extra = np.setdiff1d(top, cands.ids)
                union = search.Candidates(np.concatenate([cands.ids, extra]),
                                          np.concatenate([cands.hamming, np.zeros(len(extra), np.uint32)]))
                added.append(len(extra))
                for key, cs in (("dense", cands), ("dense+bm25", union)):
                    ranked = search.rerank_hybrid(mem.backend, mem.quantizer, queries[qi], cs, ev.RETRIEVE, side, qi)
                    runs[key][data.query_ids[qi]] = [names[int(i)] for i in ranked.ids]
                same += runs["dense"][data.query_ids[qi]] == store_run[data.query_ids[qi]]
        methods = {"float32": ev.score_run(ev.run_exact(data, docs, queries)[0], data.qrels)}
        methods.update({k: ev.score_run(r, data.qrels) for k, r in runs.items()})
    methods = {k: {"ndcg@10": v["ndcg@10"], "recall@100": v["recall@100"]} for k, v in methods.items()}
    out = {"dataset": name, "n_docs": len(data.doc_ids), "n_queries": len(data.query_ids), "weight": weight,
           "bm25_top": args.bm25_top, "methods": methods, "added_candidates_mean": float(np.mean(added)),
           "dense_equals_store_search": same / len(data.query_ids), "load": os.getloadavg()}
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["scifact-train", "cranfield"])
    p.add_argument("--bm25-top", type=int, default=100, help="BM25's own candidates added")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hybrid_candidates.json"))
    args = p.parse_args()
    results = [one(name, args) for name in args.datasets]
    Path(args.out).write_text(json.dumps({"model": DEFAULT_MODEL, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
