"""A byte budget on the SciFact text store (issue 20, item 2): bytes/passage and nDCG@10 before and after.

    HASHMEM_BENCH_CACHE=/tmp/compact-bench-cache .venv/bin/python benchmarks/embed_cache.py   # once
    HASHMEM_BENCH_CACHE=/tmp/compact-bench-cache .venv/bin/python benchmarks/compact.py \\
        [--per-passage 650] [--out benchmarks/results/compact.json]

Builds a ``text`` store of the 5,183 SciFact-train abstracts (cached embeddings, default
settings), closes it (the WAL checkpointed: the file is its pages) and measures it: file
bytes per passage, nDCG@10 of the train queries (``binary+int8`` and ``hybrid``), and every
query's top 10 ids and scores. Then ``Memory.compact(max_bytes=per_passage × passages)``,
timed; closed and reopened, the same measures again, and whether every query's ids and scores
are identical. A ``hints`` store of the same passages gives the floor a budget can reach (no
body at all). The load (``os.getloadavg``) is recorded with the figures.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train"
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))
K = 10


def measure(mem, data, queries) -> dict:
    """File bytes per passage, records by fidelity, nDCG@10 (binary+int8, hybrid) and every top 10."""
    from hashmem.evaluation import retrieval as ev

    s = mem.stats()
    out = {"records": s.records, "file_bytes": s.file_bytes, "file_bytes_per_passage": s.file_bytes / s.records,
           "bytes_per_passage": s.bytes_per_passage, "fidelities": s.fidelities}
    for mode in ("binary+int8", "hybrid"):
        run, ms = ev.run_store(mem, data, queries, mode=mode, progress=False)
        out[mode] = {**ev.score_run(run, data.qrels), "ms_per_query": ms}
    hits = mem.search_embeddings(queries, K)
    out["top10"] = [[(h.id, h.score) for h in q] for q in hits]
    return out


def main() -> None:
    from hashmem.evaluation import retrieval as ev
    from hashmem.memory import Memory

    ap = argparse.ArgumentParser()
    ap.add_argument("--per-passage", type=float, default=650.0, help="the budget, in bytes per passage")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/compact.json"))
    args = ap.parse_args()
    data = ev.load_beir(DATA)
    docs = np.load(CACHE / "scifact-corpus.npy")  # title + ". " + abstract, as ndcg_format.py uses it
    cached = np.load(CACHE / "scifact-queries.npy")  # embed_cache.py's order: the judged query ids, sorted
    by_id = {q: i for i, q in enumerate(sorted(data.query_ids))}
    assert len(docs) == len(data.doc_texts) and len(cached) == len(by_id), "stale embedding cache"
    queries = cached[[by_id[q] for q in data.query_ids]]  # in the dataset's order
    result = {"command": "benchmarks/compact.py " + " ".join(sys.argv[1:]), "load_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="hashmem-compact-") as tmp:
        floor = Path(tmp) / "hints.db"
        with Memory(floor) as mem:
            ev.ingest(mem, data, docs, progress=False)
        with Memory(floor, readonly=True) as mem:
            s = mem.stats()
            result["hints_store"] = {"file_bytes_per_passage": s.file_bytes / s.records}
        path = Path(tmp) / "text.db"
        with Memory(path, fidelity="text") as mem:
            ev.ingest(mem, data, docs, progress=False)
        with Memory(path) as mem:
            before = measure(mem, data, queries)
            budget = int(args.per_passage * before["records"])
            load = os.getloadavg()
            started = time.perf_counter()
            done = mem.compact(budget)
            seconds = time.perf_counter() - started
        with Memory(path) as mem:
            after = measure(mem, data, queries)
            demoted = [i for i in mem.ids() if mem.get(i).text is None]
    same = before.pop("top10") == after.pop("top10")
    result.update({
        "passages": before["records"], "budget_bytes": budget, "budget_per_passage": args.per_passage,
        "compacted": {"bytes_before": done.bytes_before, "bytes_after": done.bytes_after, "demoted": done.demoted,
                      "exact": done.exact, "met": done.met, "seconds": seconds, "load": load},
        "before": before, "after": after, "demoted_records_without_text": len(demoted),
        "top10_ids_and_scores_identical": same, "load_end": os.getloadavg(),
    })
    print(json.dumps({k: result[k] for k in ("passages", "budget_bytes", "compacted",
                                             "top10_ids_and_scores_identical")}, indent=1))
    for label in ("before", "after"):
        r = result[label]
        print(f"{label}: {r['file_bytes_per_passage']:.1f} B/passage, fidelities {r['fidelities']}, "
              f"nDCG@10 {r['binary+int8']['ndcg@10']:.4f} (hybrid {r['hybrid']['ndcg@10']:.4f})")
    print(f"hints store: {result['hints_store']['file_bytes_per_passage']:.1f} B/passage")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
