"""Issue 18: bytes per passage of SQLite FTS5 (contentless) over the exact words, the alternative to the term index.

Every passage's terms (``lexical.terms``: the hints' tokenizer, the same terms hybrid
scores) are joined by spaces and indexed by a contentless FTS5 table (``content=''``,
``columnsize=0``: no per-row sizes) with the ``ascii`` tokenizer keeping the characters our
terms hold (so FTS5 sees exactly our terms), at detail ``none`` (rowids only: no term
counts, which BM25 needs), ``column`` and ``full`` (positions); all terms of a passage, or
only its top ``T`` by BM25 weight (corpus IDF, k1 0.9, b 0.4). After ``optimize`` and
``VACUUM``, 4 KiB pages; bytes = the file size ÷ passages.

The SQLite here (3.40) has no ``contentless_delete`` (3.43): deleting a passage from a
contentless table needs its original terms.

    .venv/bin/python benchmarks/fts5_size.py scifact-train [--out benchmarks/results/fts5_size.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.memory import lexical  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def top_terms(docs: list[list[str]], t: int) -> list[list[str]]:
    """Each passage's terms restricted to its ``t`` distinct terms of largest BM25 weight (repeats kept)."""
    n = len(docs)
    df = Counter(w for d in docs for w in set(d))
    avgdl = sum(map(len, docs)) / n
    out = []
    for d in docs:
        c, dl = Counter(d), len(d)
        w = {x: math.log(1 + (n - df[x] + 0.5) / (df[x] + 0.5)) * k * (lexical.K1 + 1)
             / (k + lexical.K1 * (1 - lexical.B + lexical.B * dl / avgdl)) for x, k in c.items()}
        keep = set(sorted(w, key=lambda x: (-w[x], x))[:t])
        out.append([x for x in d if x in keep])
    return out


def fts5_bytes(docs: list[list[str]], detail: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.db"
        c = sqlite3.connect(path)
        c.execute("PRAGMA page_size = 4096")
        c.execute(f"CREATE VIRTUAL TABLE f USING fts5(t, content='', detail={detail}, columnsize=0, "
                  "tokenize=\"ascii tokenchars '_''-.,:/%'\")")
        with c:
            c.executemany("INSERT INTO f(rowid, t) VALUES (?, ?)", ((i + 1, " ".join(d)) for i, d in enumerate(docs)))
        c.execute("INSERT INTO f(f) VALUES ('optimize')")
        c.commit()
        c.execute("VACUUM")
        c.close()
        return os.path.getsize(path) / len(docs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", nargs="?", default="scifact-train")
    p.add_argument("--top", type=int, nargs="+", default=[0, 48, 32], help="terms kept per passage (0: all)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fts5_size.json"))
    args = p.parse_args()
    data = ev.load_beir(DATA / args.dataset)
    docs = [lexical.terms(t) for t in data.doc_texts]
    rows = []
    for t in args.top:
        kept = docs if t == 0 else top_terms(docs, t)
        for detail in ("none", "column", "full"):
            rows.append({"top_terms": t or None, "detail": detail, "bytes_per_passage": fts5_bytes(kept, detail)})
            print(rows[-1], file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps({
        "dataset": args.dataset, "sqlite": sqlite3.sqlite_version, "passages": len(docs),
        "mean_terms": sum(map(len, docs)) / len(docs), "mean_distinct_terms": sum(len(set(d)) for d in docs) / len(docs),
        "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
