"""Cost and quality of the ITQ refit: the old fit (float64, 50 iterations, BLAS threads as they come)
against the capped one (float32, ``hashing.ITQ_ITERATIONS``, one BLAS thread), side by side in one run.

    HASHMEM_BENCH_CACHE=/tmp/i9-bench-cache .venv/bin/python benchmarks/embed_cache.py
    HASHMEM_BENCH_CACHE=/tmp/i9-bench-cache .venv/bin/python benchmarks/refit_cost.py [--skip-ndcg]

On SciFact (5,183 passages, cached embeddings, dequantized int8 vectors as the store fits them):
seconds per fit (ratios are what to trust on a shared machine), ITQ quantization loss
mean((sign(P) - P)^2) over all passages, the loss when fitted on a sample of a given size, and
nDCG@10 of the store's search (``eval.evaluate`` with ``refit=True``) with either fit.
Writes benchmarks/results/refit_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))
OUT = Path(__file__).resolve().parent / "results" / "refit_cost.json"


def old_itq_projection(xc, *, bits, iterations, seed):
    """The fit as it was before (float64 throughout, 50 iterations by default)."""
    xc64 = xc.astype(np.float64)
    cov = xc64.T @ xc64 / max(len(xc64) - 1, 1)
    eigval, eigvec = np.linalg.eigh(cov)
    w = eigvec[:, np.argsort(eigval)[::-1][:bits]]
    v = xc64 @ w
    rng = np.random.default_rng(seed)
    r, _ = np.linalg.qr(rng.standard_normal((bits, bits)))
    for _ in range(iterations):
        b = np.where(v @ r >= 0, 1.0, -1.0)
        u, _, vt = np.linalg.svd(b.T @ v)
        r = (u @ vt).T
    return w @ r


def loss(hasher, x) -> float:
    p = hasher.project(x)
    return float(np.mean((np.where(p >= 0, 1.0, -1.0) - p) ** 2))


def main() -> None:
    from contextlib import nullcontext

    from hashmem.evaluation import retrieval as ev
    from hashmem.memory import hashing, quantize

    ap = argparse.ArgumentParser()
    ap.add_argument("--bits", type=int, default=256)
    ap.add_argument("--skip-ndcg", action="store_true")
    args = ap.parse_args()
    docs = np.load(CACHE / "scifact-corpus.npy")
    queries = np.load(CACHE / "scifact-queries.npy")
    q = quantize.fit(docs)
    x = q.decode(q.encode(docs))
    new_impl = hashing._itq_projection

    def fit_with(impl, iterations, sample=None, one_thread=True):
        hashing._itq_projection = impl
        limit = hashing._one_blas_thread
        if not one_thread:
            hashing._one_blas_thread = nullcontext
        try:
            xs = x if sample is None else x[np.random.default_rng(0).choice(len(x), sample, replace=False)]
            t = time.perf_counter()
            h = hashing.fit("itq", xs, bits=args.bits, iterations=iterations)
            return h, time.perf_counter() - t
        finally:
            hashing._itq_projection = new_impl
            hashing._one_blas_thread = limit

    rows = []
    for name, impl, iters, one in [
        ("old: float64, 50 it, BLAS threads free", old_itq_projection, 50, False),
        ("float32, 50 it, 1 BLAS thread", new_impl, 50, True),
        (f"new: float32, {hashing.ITQ_ITERATIONS} it, 1 BLAS thread", new_impl, hashing.ITQ_ITERATIONS, True),
        ("float32, 10 it, 1 BLAS thread", new_impl, 10, True),
    ]:
        h, sec = fit_with(impl, iters, one_thread=one)
        rows.append({"fit": name, "seconds": round(sec, 3), "itq_loss": round(loss(h, x), 5)})
        print(rows[-1], flush=True)
    base = rows[0]["seconds"]
    for r in rows:
        r["seconds_vs_old"] = round(r["seconds"] / base, 3)
    samples = []
    for m in (1024, 2048, 4096):
        h, sec = fit_with(new_impl, hashing.ITQ_ITERATIONS, sample=m)
        samples.append({"sample": m, "seconds": round(sec, 3), "itq_loss_on_all": round(loss(h, x), 5)})
        print(samples[-1], flush=True)
    out = {"dataset": "scifact-train", "n": len(x), "bits": args.bits, "fits": rows, "samples": samples}
    if not args.skip_ndcg:
        # the cache holds the train queries that have qrels, sorted by id (benchmarks/embed_cache.py)
        data = ev.load_beir(DATA / "scifact-train")
        qids = sorted({line.split("\t")[0] for line in list(open(DATA / "scifact-train" / "qrels.tsv"))[1:]})
        pos = {qid: i for i, qid in enumerate(qids)}
        queries = queries[[pos[qid] for qid in data.query_ids]]
        ndcg = {}
        for name, impl, iters in [("old", old_itq_projection, 50), ("new", new_impl, hashing.ITQ_ITERATIONS)]:
            hashing._itq_projection = impl
            real_iters = hashing.ITQ_ITERATIONS
            hashing.ITQ_ITERATIONS = iters
            try:
                res = ev.evaluate(DATA / "scifact-train", corpus_embeddings=docs, query_embeddings=queries,
                                  refit=True, methods=["float32", "binary", "binary+int8"], bits=args.bits,
                                  progress=False)
            finally:
                hashing._itq_projection = new_impl
                hashing.ITQ_ITERATIONS = real_iters
            ndcg[name] = {m: round(v["ndcg@10"], 4) for m, v in res["methods"].items()}
            print(name, ndcg[name], flush=True)
        out["ndcg@10"] = ndcg
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
