"""nDCG@10 on SciFact before and after the format 2 store (issue 8, item 2): is retrieval unchanged?

    .venv/bin/python benchmarks/embed_cache.py          # once: the corpus embeddings
    .venv/bin/python benchmarks/ndcg_format.py [--out benchmarks/results/ndcg_format.json]

Of the format 2 changes only one can move a ranking: the hasher's projection is
rounded to float16 values (so it is stored as float16). The compressed lexicon,
interned namespaces and metadata, and the page size change bytes on disk, not
results. So this runs ``memory.eval.evaluate`` (defaults: ITQ 256 bits, 100
candidates) on scifact-train twice with the same embeddings: as the code is, and
with the float16 rounding switched off (the format 1 behaviour), and reports
both; ``--seeds 1 2`` adds the float32 projection with other ITQ seeds, to show
the fit's own run-to-run spread. Corpus embeddings come from ``$HASHMEM_BENCH_CACHE/scifact-corpus.npy``
(title + ". " + abstract, the default int8 ONNX backend); queries are embedded here.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train"
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))


def main() -> None:
    from hashmem.evaluation import retrieval as ev
    from hashmem.memory import hashing

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--seeds", type=int, nargs="*", default=[],
                    help="also the float32 projection with these ITQ seeds: the fit's own noise")
    args = ap.parse_args()
    docs = np.load(CACHE / "scifact-corpus.npy")
    result = {}
    half = hashing._half
    for label, rounding in (("float32_projection (format 1)", lambda p: np.asarray(p, dtype=np.float32)),
                            ("float16_projection (format 2)", half)):
        hashing._half = rounding
        r = ev.evaluate(DATA, corpus_embeddings=docs, methods=("float32", "binary+int8"), progress=False)
        m = r["methods"]
        result[label] = {"ndcg@10": m["binary+int8"]["ndcg@10"], "recall@10": m["binary+int8"]["recall@10"],
                         "float32_ndcg@10": m["float32"]["ndcg@10"],
                         "ratio_to_float32": m["binary+int8"]["ndcg@10"] / m["float32"]["ndcg@10"]}
        print(label, json.dumps(result[label]), flush=True)
    fit = hashing.fit
    for seed in args.seeds:
        hashing._half = lambda p: np.asarray(p, dtype=np.float32)
        hashing.fit = functools.partial(fit, seed=seed)
        r = ev.evaluate(DATA, corpus_embeddings=docs, methods=("binary+int8",), progress=False)
        result[f"float32_projection, ITQ seed {seed}"] = {"ndcg@10": r["methods"]["binary+int8"]["ndcg@10"]}
        print(seed, json.dumps(result[f"float32_projection, ITQ seed {seed}"]), flush=True)
    hashing._half, hashing.fit = half, fit
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
