"""Issue 18: what hybrid search adds at 1M passages, on a ``text`` store (term index) and a ``hints`` store.

What is built (no 1M real corpus is embedded here: it would take hours on 2 cores):

1. a real store of each fidelity from scifact-train + cranfield (6,581 passages, the cached
   all-MiniLM-L6-v2 embeddings of ``eval_grid.cached_embeddings``) through ``Memory.add``;
2. grown to ``--n`` records by copying those rows with new ids in SQL (records, text bodies,
   term index entries: the same bytes ``Memory.add`` wrote for them), and the lexicon's
   document counts scaled by the same factor (so IDF is that of the grown corpus). The
   tables the lexical stage reads (``records.hints``, ``term_index``) then have ``--n`` rows
   of real passages, and the candidates of a query are spread over the whole file.

The namespace's IVF partition is switched off (``index.IVF_MIN_ROWS``): fitting it at the
first open takes minutes here and only changes stage 1, which hybrid shares with
binary+int8. For the first ``--timed`` scifact queries, binary+int8 and hybrid (weight 0.4
on text, 0.15 on hints) search the same query one after the other (interleaved, after one
warm-up pass); the p50 of the per-query differences is what hybrid adds, in wall time
and in this process's CPU time (``time.process_time``: on a machine loaded by other jobs
the wall time mostly measures waiting). The same is measured on the 6,581-passage store
before it is grown, in the same run.

    OPENBLAS_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hybrid_scale.py --n 1000000 --dir /tmp/hm-hybrid-scale \\
        --out benchmarks/results/hybrid_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
from hashmem.memory import Memory  # noqa: E402
from hashmem.memory.backends.local import index as local_index  # noqa: E402
from hashmem.memory.embedding.embedder import DEFAULT_MODEL  # noqa: E402

SETS = ("scifact-train", "cranfield")


def build(path: Path, fidelity: str) -> int:
    with Memory(path, fidelity=fidelity) as mem:
        for name in SETS:
            data = ev.load_beir(DATA / name)
            ev.ingest(mem, data, cached_embeddings(data, DEFAULT_MODEL)[0], progress=False)
        return len(mem)


def grow(path: Path, n: int) -> None:
    """Copy the store's rows (ids 1..n0) with new ids until it holds n records; scale the lexicon's counts."""
    from hashmem.memory.backends.local.storage import Storage

    st = Storage(path, create=False)
    n0 = st.count()
    tables = [("records", "namespace, metadata, meta_set, code, qvec, hints")]
    terms = "entry" if st.term_table.format == 2 else "length, ids, counts, numbers"
    tables += [(t, cols) for t, cols in (("texts", "body"), ("term_index", terms)) if st.file.has(t)]
    with st.transaction() as c:
        have = n0
        while have < n:
            m = min(n0, n - have)
            for table, cols in tables:
                c.execute(f"INSERT INTO {table} SELECT id + ?, {cols} FROM {table} WHERE id <= ?", (have, m))
            have += m
        st.set_meta(c, "last_id", str(have))
        st.set_meta(c, "record_count", str(have))
        lex = st.load_lexicon()
        factor = have / n0
        lex.n_docs = have
        lex.df = [round(d * factor) for d in lex.df]
        st.save_lexicon(c, lex, [], set(range(len(lex.terms))))
    st.checkpoint()
    st.close()


def added(path: Path, weight: float, queries: np.ndarray, texts: list[str], n: int) -> dict:
    with Memory(path, create=False) as mem:
        def one(qi: int, mode: str) -> tuple[float, float]:
            t, c = time.perf_counter(), time.process_time()
            mem.search_embeddings(queries[qi : qi + 1], 10, mode=mode, query_texts=[texts[qi]],
                                  lexical_weight=weight if mode == "hybrid" else None)
            return 1000 * (time.perf_counter() - t), 1000 * (time.process_time() - c)

        for qi in range(n):  # warm-up: the lexicon, SQLite's caches, the kernels
            one(qi, "hybrid")
        base, hyb = [], []
        for qi in range(n):
            base.append(one(qi, "binary+int8"))
            hyb.append(one(qi, "hybrid"))
        b, h = np.array(base), np.array(hyb)  # [n, 2]: wall ms, this process's CPU ms
        return {"records": len(mem), "term_index": mem.backend.has_term_index(),
                "binary+int8_p50": float(np.median(b[:, 0])), "hybrid_p50": float(np.median(h[:, 0])),
                "added_p50": float(np.median(h[:, 0] - b[:, 0])), "added_p90": float(np.percentile(h[:, 0] - b[:, 0], 90)),
                "added_cpu_p50": float(np.median(h[:, 1] - b[:, 1])), "binary+int8_cpu_p50": float(np.median(b[:, 1])),
                "file_bytes": mem.stats().file_bytes, "load": os.getloadavg()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dir", default="/tmp/hm-hybrid-scale")
    p.add_argument("--timed", type=int, default=100)
    p.add_argument("--fidelities", nargs="+", default=["text", "hints"])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hybrid_scale.json"))
    args = p.parse_args()
    local_index.IVF_MIN_ROWS = 10**12  # see the docstring: stage 1 brute force at every size
    data = ev.load_beir(DATA / "scifact-train")
    queries = cached_embeddings(data, DEFAULT_MODEL)[1]
    out = []
    for fid in args.fidelities:
        path = Path(args.dir) / f"{fid}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        for f in path.parent.glob(f"{fid}.db*"):
            f.unlink()
        weight = 0.4 if fid == "text" else 0.15
        n0 = build(path, fid)
        small = added(path, weight, queries, data.query_texts, args.timed)
        t = time.perf_counter()
        grow(path, args.n)
        grow_s = time.perf_counter() - t
        large = added(path, weight, queries, data.query_texts, args.timed)
        row = {"fidelity": fid, "weight": weight, "base_records": n0, "grow_s": grow_s, "small": small, "large": large}
        print(json.dumps(row), file=sys.stderr, flush=True)
        out.append(row)
        for f in path.parent.glob(f"{fid}.db*"):
            f.unlink()
    Path(args.out).write_text(json.dumps({"model": DEFAULT_MODEL, "results": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
