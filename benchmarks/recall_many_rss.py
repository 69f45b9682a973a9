"""llm tier: the resident memory ``Memory.recall_many`` adds for its multi-sequence batch context, sized to the batch or N_CTX.

A 10-passage ``llm`` store (SciFact passages of 50–70 words) is made once; then
each measurement is a fresh child process that opens it, ``get``s one record
(the single-sequence model loaded), reads its RSS (psutil), ``recall_many``s all
of them (the batch context made) and reads its RSS again. Two sizings, in
alternating order per round:

- ``fit``: what ``decoders.llmbatch.batch_model`` does, KV cells per sequence
  sized to the longest prompt + passage of the request, rounded up to 256;
- ``n_ctx``: the former sizing, ``N_CTX`` (2,048) cells per sequence (the same
  model with ``batch`` asked for no length).

Reported: RSS after the get and after recall_many, their difference, medians
over rounds, and the ratio fit ÷ n_ctx of the differences; the load goes in the JSON.

    .venv/bin/python benchmarks/recall_many_rss.py [--passages 10] [--rounds 2] \\
        [--json benchmarks/results/recall_many_rss.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from llm_threads import passages  # benchmarks/ is the script's directory

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20


class NCtxCells:
    """The token model whose batch model has N_CTX cells per sequence whatever length is asked (the former sizing)."""

    def __init__(self, model) -> None:
        self._model = model

    def batch(self, n: int, tokens: int | None = None):
        return self._model.batch(n)

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def child(path: str, sizing: str) -> None:
    """Open the store, get one record, recall_many all; one JSON line of RSS figures on stdout."""
    import psutil

    from hashmem.decoders.llmcodec import LlamaTokenModel
    from hashmem.memory import Memory

    model = LlamaTokenModel()
    with Memory(path, token_model=model if sizing == "fit" else NCtxCells(model)) as mem:
        ids = mem.ids()
        mem.get(ids[0])
        after_get = psutil.Process().memory_info().rss
        got = mem.recall_many(ids)
        after_many = psutil.Process().memory_info().rss
        batch = model._batch_model
        print(json.dumps({"sizing": sizing, "rss_after_get_mb": round(after_get / MB, 1),
                          "rss_after_recall_many_mb": round(after_many / MB, 1),
                          "recall_many_mb": round((after_many - after_get) / MB, 1),
                          "n_seq": batch.n_seq, "cells_per_seq": batch.cells, "records": len(got)}))


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "recall_many_rss.json")
    ap.add_argument("--child", nargs=2, metavar=("STORE", "SIZING"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    from hashmem.memory import Memory

    texts = passages(args.passages)
    out: dict = {"command": f"benchmarks/recall_many_rss.py --passages {args.passages} --rounds {args.rounds}",
                 "passages": len(texts), "runs": [], "load_before": load()}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "llm.db"
        with Memory(store, fidelity="llm") as mem:
            mem.add(texts)
            out["coded"] = mem._llm().last_stats.coded
        for r in range(args.rounds):
            for sizing in ["fit", "n_ctx"] if r % 2 == 0 else ["n_ctx", "fit"]:
                line = subprocess.run([sys.executable, __file__, "--child", str(store), sizing], check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1]
                run = {**json.loads(line), "round": r, "load": load()}
                print(run, flush=True)
                out["runs"].append(run)
    out["load_after"] = load()
    med = {s: statistics.median(x["recall_many_mb"] for x in out["runs"] if x["sizing"] == s) for s in ("fit", "n_ctx")}
    out["median_recall_many_mb"] = med
    out["median_rss_after_get_mb"] = statistics.median(x["rss_after_get_mb"] for x in out["runs"])
    out["ratio_fit_to_n_ctx"] = round(med["fit"] / med["n_ctx"], 3)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("median_recall_many_mb", "median_rss_after_get_mb", "ratio_fit_to_n_ctx",
                                          "load_before", "load_after")}))


if __name__ == "__main__":
    main()
