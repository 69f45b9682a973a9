"""Issue 18: would dropping stopwords (or the most common words) from term index entries reach 150 B?

Each passage of a dataset is tokenized as at add time (``hints.tokenize``), one lexicon is
built over all of them, and each entry is encoded (``termindex.encode``, format 1, every term kept);
its payload (gap-coded ids + counts + numbers, no SQLite row or page overhead) is averaged.
Reported: how many tokens of the entries are ``hints.STOPWORDS`` (the tokenizer drops them,
so none: a stopword list saves nothing, and ``length`` already excludes them), and the
payload when every term in more than a fraction of the passages is also dropped (a
corpus-made stopword list; nDCG not measured).

    .venv/bin/python benchmarks/termindex_stopwords.py [--out benchmarks/results/termindex_stopwords.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.memory import hints, termindex  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def payload(entries: list[termindex.TermStats]) -> float:
    return sum(len(e.terms) + len(e.counts) + len(e.numbers or b"") for e in entries) / len(entries)


def one(name: str, fractions: list[float]) -> dict:
    data = ev.load_beir(DATA / name)
    toks = [hints.tokenize(t) for t in data.doc_texts]
    lex = hints.Lexicon()
    lex.observe(hints.terms_of(t) for t in toks)
    raw = sum(1 for t in data.doc_texts for s in re.findall(r"[^\W\d_]+", t) if s.lower() in hints.STOPWORDS)
    row = {"dataset": name, "passages": len(toks), "stopword_words_in_texts": raw,
           "stopword_tokens_in_entries": sum(1 for ts in toks for t in ts if t.key.lower() in hints.STOPWORDS),
           "payload_per_passage": payload([termindex.encode(t, lex, 1) for t in toks]), "df_cut": []}
    for frac in fractions:
        drop = {i for i, d in enumerate(lex.df) if d > frac * lex.n_docs}
        kept = [[t for t in ts if t.kind == "number" or lex.ids[t.key] not in drop] for ts in toks]
        row["df_cut"].append({"df_over": frac, "terms_dropped": len(drop),
                              "payload_per_passage": payload([termindex.encode(t, lex, 1) for t in kept])})
    print(row, file=sys.stderr, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["scifact-train", "cranfield"])
    p.add_argument("--df-over", type=float, nargs="+", default=[0.5, 0.25, 0.1, 0.05])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "termindex_stopwords.json"))
    args = p.parse_args()
    rows = [one(name, args.df_over) for name in args.datasets]
    Path(args.out).write_text(json.dumps({"results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
