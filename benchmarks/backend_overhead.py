"""Memory.search before and after a change of the code's shape, side by side in one run.

Two worker processes hold the same workload: one imports hashmem from a checkout of
the commit before the change (``--before DIR``, a tree laid out as an import root:
``DIR/hashmem/{memory,...}``), the other the working tree. Each builds its own store of
``--n`` SciFact passages (precomputed unit embeddings, the same for both), then the
parent asks them, alternately and round after round, to time ``search_embeddings`` on
the same queries. Reported: ms/query per side (median of rounds), the ratio
after / before of those medians and the median of each round's own ratio, whether both return the same hits, and each worker's peak RSS after
building its store. A ratio, not absolute times:
the machine is shared.

    python benchmarks/backend_overhead.py --before /tmp/hm_before_pkg --n 3000 --rounds 7

Run for the storage-backend interface (``results/backend_overhead.json``) and for the
rooms of issue 17 against 141d78b (``--json benchmarks/results/backend_overhead_rooms.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "scifact-train"
OUT = ROOT / "benchmarks" / "results" / "backend_overhead.json"

WORKER = r"""
import json, sys, time
import numpy as np
from hashmem.memory import Memory
import hashmem.memory.store as store_mod
path, n, nq, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
texts = [json.loads(l)["text"] for l in open(sys.argv[5])][:n]
rng = np.random.default_rng(0)
emb = rng.standard_normal((n, 384)).astype(np.float32)
emb[1:] += 0.5 * emb[:-1]  # some structure: neighbours share components
emb /= np.linalg.norm(emb, axis=1, keepdims=True)
qs = emb[rng.choice(n, nq, replace=False)] + 0.3 * rng.standard_normal((nq, 384)).astype(np.float32)
qs /= np.linalg.norm(qs, axis=1, keepdims=True)
mem = Memory(path)
mem.add(texts, embeddings=emb, progress=False)
mem.search_embeddings(qs[:4], k)  # warm the kernels
import resource
print(json.dumps({"ready": store_mod.__file__, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}),
      flush=True)
for line in sys.stdin:
    t = time.perf_counter()
    res = [mem.search_embeddings(q[None, :], k)[0] for q in qs]
    dt = (time.perf_counter() - t) * 1000 / nq
    print(json.dumps({"ms": dt, "hits": [[h.id for h in r] for r in res]}), flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="import root of the commit before the interface")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", default=str(OUT), help="where the result goes")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        procs = {}
        for side, root in (("before", args.before), ("after", None)):
            e = dict(env)
            if root:
                e["PYTHONPATH"] = root  # ahead of the editable install's finder
            procs[side] = subprocess.Popen(
                [sys.executable, "-c", WORKER, f"{tmp}/{side}.db", str(args.n), str(args.queries), str(args.k),
                 str(DATA / "corpus.jsonl")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=e,
                cwd=tmp)  # not the repository: its hashmem/ folder would shadow the checkout under test
        ready = {s: json.loads(p.stdout.readline()) for s, p in procs.items()}
        files = {s: r["ready"] for s, r in ready.items()}
        times = {"before": [], "after": []}
        hits = {}
        for r in range(args.rounds):
            for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
                p = procs[side]
                p.stdin.write("go\n")
                p.stdin.flush()
                got = json.loads(p.stdout.readline())
                times[side].append(got["ms"])
                hits[side] = got["hits"]
            time.sleep(0.1)
        for p in procs.values():
            p.stdin.close()
            p.wait()
    med = {s: sorted(v)[len(v) // 2] for s, v in times.items()}
    paired = sorted(a / b for a, b in zip(times["after"], times["before"], strict=True))  # each round's own ratio
    out = {
        "n": args.n, "queries": args.queries, "k": args.k, "rounds": args.rounds,
        "ms_per_query_median": med, "ms_per_query_rounds": times,
        "ratio_after_over_before": med["after"] / med["before"],
        # the two sides of one round ran back to back: the median of per-round ratios is less moved by the
        # machine's load drifting over the run than the ratio of the two medians
        "ratio_median_of_rounds": paired[len(paired) // 2],
        "same_hits": hits["before"] == hits["after"], "modules": files,
        "peak_rss_mb_after_build": {s: round(r["maxrss_kb"] / 1024, 1) for s, r in ready.items()},
        "command": " ".join(["python", *sys.argv]),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
