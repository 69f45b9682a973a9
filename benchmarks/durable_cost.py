"""Ingest cost of ``--durable`` (SQLite synchronous=FULL) against the default (NORMAL), side by side.

    .venv/bin/python benchmarks/durable_cost.py [--n 1000] [--batch 32] [--reps 3] [--dir DIR]

Adds ``--n`` short passages with precomputed embeddings (so the embedder's time, the same in both,
does not hide the commits' cost) in transactions of ``--batch``, into a new store in ``--dir``
(default: a temporary directory; its filesystem decides what an fsync costs), alternating the two
settings ``--reps`` times. Reports seconds per run and the ratio of medians. Writes
benchmarks/results/durable_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
OUT = Path(__file__).resolve().parent / "results" / "durable_cost.json"


def main() -> None:
    from hashmem.memory import Memory

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)  # + 8 warm-up passages: below the first refit (1,024)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((args.n, 384)).astype(np.float32)
    texts = [f"passage {i} about item {i % 97} in room {i % 13}" for i in range(args.n)]
    root = Path(args.dir or tempfile.mkdtemp(prefix="hashmem-durable-"))
    Memory(root / "warm.db").add(texts[:8], embeddings=emb[:8])  # load the model once, outside the timing
    times: dict[str, list[float]] = {"normal": [], "durable": []}
    for rep in range(args.reps):
        for name in ("normal", "durable") if rep % 2 == 0 else ("durable", "normal"):
            path = root / f"{name}{rep}.db"
            with Memory(path, durable=name == "durable", batch_size=args.batch) as m:
                m.add(texts[:8], embeddings=emb[:8])  # quantizer calibration, outside the timing
                t = time.perf_counter()
                m.add(texts, embeddings=emb, progress=False)
                times[name].append(time.perf_counter() - t)
            print(name, rep, round(times[name][-1], 3), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"n": args.n, "batch": args.batch, "transactions": -(-args.n // args.batch), "dir": str(root),
           "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
           "median_s": {k: round(v, 3) for k, v in med.items()},
           "durable_over_normal": round(med["durable"] / med["normal"], 3)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
