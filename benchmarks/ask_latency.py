"""ask latency side by side: the extract answer against the span answer, alternating per question in one process.

A text store of the LoCoMo turns (as eval-ask stores them); for each of N questions
spread over the file, ``ask`` with both styles in alternating order (one model, loaded
once); ms p50/p90 per style and their ratio — timings on a shared machine are only
comparable within one run.

    python benchmarks/ask_latency.py [--limit 40] [--k 5] > benchmarks/results/ask_latency.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hashmem.decoders import llama as dl
from hashmem.decoders import spans
from hashmem.evaluation.ask import _day, load, pick
from hashmem.memory import Memory

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "locomo"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    turns, questions = load(args.data)
    chosen = pick(questions, args.limit)
    ms: dict[str, list[float]] = {"extract": [], "span": []}
    kinds: dict[str, list[str]] = {"extract": [], "span": []}
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "t.db", fidelity="text") as mem:
        for conv in sorted({t["conv"] for t in turns}):
            mine = [t for t in turns if t["conv"] == conv]
            mem.add([f"({_day(t['date_time'])}) {t['text']}" for t in mine], namespace=conv, progress=False)
        decs = {s: dl.LlamaDecoder(mem, threads=args.threads, ask_style=s) for s in ms}
        decs["span"].ask("warm up?", mem.search("warm up?", args.k, namespace=chosen[0]["conv"]))
        for i, q in enumerate(chosen):
            hits = mem.search(q["text"], args.k, namespace=q["conv"])
            for style in (("extract", "span") if i % 2 == 0 else ("span", "extract")):
                started = time.perf_counter()
                decs[style].ask(q["text"], hits)
                ms[style].append((time.perf_counter() - started) * 1000)
                kinds[style].append(spans.question_kind(q["text"]))
    pct = lambda xs, p: round(float(np.percentile(xs, p)), 1)  # noqa: E731
    out = {"questions": len(chosen), "k": args.k, "threads": args.threads}
    for style, xs in ms.items():
        other = [x for x, kd in zip(xs, kinds[style], strict=True) if kd != "when"]
        out[style] = {"ms_p50": pct(xs, 50), "ms_p90": pct(xs, 90),
                      "ms_p50_not_when": pct(other, 50) if other else None}
    out["p50_ratio_extract_over_span"] = round(out["extract"]["ms_p50"] / out["span"]["ms_p50"], 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
