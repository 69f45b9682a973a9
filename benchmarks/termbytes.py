"""Issue 18: the term index's bytes, BM25 and decode cost in format 2 (``termcode``) against format 1, and hybrid's added time.

For each dataset one ``text`` store is built from cached embeddings (format 2: what a store
writes now), and a copy of it gets its ``term_index`` rewritten in format 1 (the four
columns of a store made before; the same entries: length, ids, counts, numbers). Reported:

- the index's bytes per passage in each: its b-tree pages (``dbstat``, row overhead and the
  16 KB pages included: what ``hybrid.py`` reports) and its rows' payload;
- BM25 of each format over every query's dense candidates (``fusion.hybrid_for``'s scores):
  how many queries' arrays differ at all (0: bit-identical), and nDCG@10 / recall@100 of
  hybrid on both stores;
- the decode and score cost of 100 random passages' entries (``termindex.scores``, the
  entries already read), per format, interleaved, p50 over ``--draws``;
- what a hybrid search adds at this size: for the first ``--timed`` queries, ``--rounds``
  times, binary+int8, hybrid on the format 2 store and hybrid on the format 1 copy search
  one after the other; the p50 of the per-query differences to binary+int8 (wall and this
  process's CPU time: the machine is shared), with the load average.

    OPENBLAS_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/termbytes.py --out benchmarks/results/termbytes.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
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
from hashmem.memory import Memory, fusion, termcode, termindex  # noqa: E402
from hashmem.memory.backends.local import sidetables  # noqa: E402
from hashmem.memory.embedding.embedder import DEFAULT_MODEL  # noqa: E402
from hashmem.memory.search import Candidates  # noqa: E402

WEIGHT = fusion.DEFAULT_LEXICAL_WEIGHT["text"]


def to_format_1(path: Path) -> None:
    """Rewrite a format 2 store's term index as format 1 rows (the same entries)."""
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT id, entry FROM term_index ORDER BY id").fetchall()
    owner, ids, counts, lengths, starts = termcode.unpack([e for _, e in rows])
    cut = np.searchsorted(owner, np.arange(len(rows) + 1))
    out = []
    for p, (i, blob) in enumerate(rows):
        a, b = cut[p], cut[p + 1]
        entry = termindex.make(int(lengths[p]), ids[a:b].tolist(), counts[a:b].astype(int).tolist(),
                               termcode.numbers(blob, int(starts[p])), fmt=1)
        out.append((i, *entry))
    conn.execute("DROP TABLE term_index")
    conn.execute(sidetables.TERMS_V1)
    conn.executemany("INSERT INTO term_index VALUES (?, ?, ?, ?, ?)", out)
    conn.commit()
    conn.execute("VACUUM")
    conn.close()


def index_bytes(mem) -> dict:
    conn, n = mem.backend.storage.conn, len(mem)
    pages = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'term_index'").fetchone()[0]
    cols = "length(entry)" if mem.backend.term_format() == 2 else \
        "length(ids) + length(counts) + coalesce(length(numbers), 0) + 2"  # + 2: the length column's integer
    payload = conn.execute(f"SELECT sum({cols}) FROM term_index").fetchone()[0]
    return {"pages_per_passage": pages / n, "payload_per_passage": payload / n}


def timed(mem, data, queries, qi: int, mode: str) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    mem.search_embeddings(queries[qi : qi + 1], 10, mode=mode, query_texts=[data.query_texts[qi]],
                          lexical_weight=WEIGHT if mode == "hybrid" else None)
    return 1000 * (time.perf_counter() - w), 1000 * (time.process_time() - c)


def one(name: str, args) -> dict:
    data = ev.load_beir(DATA / name)
    docs, queries = cached_embeddings(data, DEFAULT_MODEL)
    with tempfile.TemporaryDirectory(prefix="hashmem-termbytes-") as tmp:
        new_path, old_path = Path(tmp) / "v2.db", Path(tmp) / "v1.db"
        with Memory(new_path, fidelity="text") as mem:
            ev.ingest(mem, data, docs, progress=False)
        shutil.copy(new_path, old_path)
        to_format_1(old_path)
        with Memory(new_path) as new, Memory(old_path) as old:
            assert new.backend.term_format() == 2 and old.backend.term_format() == 1
            out = {"dataset": name, "n_docs": len(data.doc_ids), "n_queries": len(data.query_ids),
                   "index_bytes": {"format2": index_bytes(new), "format1": index_bytes(old)}}
            # BM25 of both formats over each query's dense candidates
            sides = {k: fusion.hybrid_for(m, data.query_texts, WEIGHT) for k, m in (("format2", new), ("format1", old))}
            differ = 0
            for qi in range(len(data.query_ids)):
                hits = new.search_embeddings(queries[qi : qi + 1], 100, mode="binary+int8")[0]
                cands = Candidates(np.array([h.id for h in hits], np.int64), np.zeros(len(hits), np.uint32))
                a, b = (sides[k].bm25(qi, cands)[0] for k in ("format2", "format1"))
                differ += not np.array_equal(a, b)
            out["queries_bm25_differs"] = differ
            out["methods"] = {k: ev.score_run(ev.run_store(m, data, queries, mode="hybrid", lexical_weight=WEIGHT,
                                                           progress=False)[0], data.qrels)
                              for k, m in (("format2", new), ("format1", old))}
            out["methods"] = {k: {"ndcg@10": v["ndcg@10"], "recall@100": v["recall@100"]}
                              for k, v in out["methods"].items()}
            # decode + score of 100 entries, interleaved
            rng = np.random.default_rng(0)
            ids = np.array(new.ids(), np.int64)
            cost = {"format2": [], "format1": []}
            for _ in range(args.draws):
                pick, qi = rng.choice(ids, 100, replace=False), int(rng.integers(len(data.query_ids)))
                for k, m in (("format2", new), ("format1", old)):
                    got = m.backend.term_entries(pick)
                    entries = [termindex.entry(got[int(i)]) for i in pick]
                    lex, side = m.lexicon, sides[k]
                    t = time.perf_counter()
                    termindex.scores(side.queries[qi], entries, lex, side.weights[qi])
                    cost[k].append(1e6 * (time.perf_counter() - t))
            out["score_100_us_p50"] = {k: float(np.median(v)) for k, v in cost.items()}
            # added time of hybrid at this size
            t: dict[str, list] = {"binary+int8": [], "format2": [], "format1": []}
            for _ in range(args.rounds):
                for qi in range(min(args.timed, len(data.query_ids))):
                    t["binary+int8"].append(timed(new, data, queries, qi, "binary+int8"))
                    t["format2"].append(timed(new, data, queries, qi, "hybrid"))
                    t["format1"].append(timed(old, data, queries, qi, "hybrid"))
            arr = {k: np.array(v) for k, v in t.items()}  # [searches, (wall, cpu)]
            out["search_ms_p50"] = {k: {"wall": float(np.median(v[:, 0])), "cpu": float(np.median(v[:, 1]))}
                                    for k, v in arr.items()}
            out["added_ms_p50"] = {k: {"wall": float(np.median(arr[k][:, 0] - arr["binary+int8"][:, 0])),
                                       "cpu": float(np.median(arr[k][:, 1] - arr["binary+int8"][:, 1]))}
                                   for k in ("format2", "format1")}
            out["searches"] = len(arr["binary+int8"])
    out["load"] = os.getloadavg()
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["scifact-train", "cranfield"])
    p.add_argument("--timed", type=int, default=100, help="queries in the interleaved timing")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--draws", type=int, default=300, help="random sets of 100 entries decoded per format")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "termbytes.json"))
    args = p.parse_args()
    results = [one(name, args) for name in args.datasets]
    Path(args.out).write_text(json.dumps({"model": DEFAULT_MODEL, "weight": WEIGHT, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
