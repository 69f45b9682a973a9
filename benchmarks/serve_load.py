"""Load run of the HTTP server on loopback: 1 writer adding and 8 concurrent searchers, bounded in time.

Steps, all in one run so the ratios compare like with like:

1. a store with ``--passages`` scifact-train passages (title + text) in namespace ``docs``;
2. ``hashmem serve --port 0`` in a child process (the models load once, before it listens);
3. load: for ``--seconds``, 1 writer thread posts batches of ``--batch`` new passages to
   ``/v1/passages`` (namespace ``notes``) while 8 searcher threads post scifact queries to
   ``/v1/search`` (k=10, namespace ``docs``), each with its own httpx client: searches/s,
   latency p50 / p99, errors (any non-2xx or transport error), passages acknowledged;
4. lost writes = acknowledged ids that a fresh ``Memory`` opened on the file does not hold;
5. idle: ``--idle-queries`` searches one at a time, each through the server with httpx, through
   the server with the standard library's ``http.client`` (one kept-alive connection), and then
   through ``Memory.search`` in this process (the library directly), in turn so all see the same
   machine load; overhead = median of the paired differences (and the hits must be identical).
   The httpx figure includes httpx's own per-request cost; the gap between the two clients is
   that cost, the same whatever server answers.

Targets (issue 10): server overhead ≤ 2 ms p50 per search over the library call (idle,
one at a time); 0 errors and 0 lost writes under load; p99 ≤ 10 × p50 under load.

Run (2 shared cores; takes the benchmark lock):

    HF_HUB_OFFLINE=1 flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/serve_load.py \\
        --json benchmarks/results/serve_load.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hashmem.memory import Memory  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train"
HASHMEM = [sys.executable, "-c", "from hashmem.cli.main import main; main()"]


def read_jsonl(path: Path, n: int) -> list[dict]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if len(out) == n:
                break
    return out


def pct(ms: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(ms), q)) if ms else float("nan")


def start_server(store: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*HASHMEM, "--store", str(store), "serve", "--port", "0", "--decoder", "extractive"],
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if m := re.search(r"running on (http://\S+)", line):
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # drain the log
            return proc, m.group(1)
    raise RuntimeError("hashmem serve stopped before listening")


def load(url: str, queries: list[str], notes: list[str], *, seconds: float, searchers: int, batch: int) -> dict:
    stop = time.monotonic() + seconds
    lat: list[list[float]] = [[] for _ in range(searchers)]
    errors: list[str] = []
    acked: list[int] = []
    write_ms: list[float] = []

    def searcher(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.monotonic() < stop:
                body = {"query": rng.choice(queries), "k": 10, "namespace": "docs"}
                t = time.perf_counter()
                try:
                    r = c.post("/v1/search", json=body)
                    ok = r.status_code == 200 and len(r.json()["hits"]) == 10
                except httpx.HTTPError as e:
                    ok, r = False, e
                lat[i].append((time.perf_counter() - t) * 1000)
                if not ok:
                    errors.append(f"search: {getattr(r, 'text', r)!s:.200}")

    def writer() -> None:
        j = 0
        with httpx.Client(base_url=url, timeout=120) as c:
            while time.monotonic() < stop:
                texts = [notes[(j + n) % len(notes)] + f" (note {j + n})" for n in range(batch)]
                j += batch
                t = time.perf_counter()
                try:
                    r = c.post("/v1/passages", json={"texts": texts, "namespace": "notes"})
                    if r.status_code == 201:
                        acked.extend(r.json()["ids"])
                    else:
                        errors.append(f"add: {r.status_code} {r.text:.200}")
                except httpx.HTTPError as e:
                    errors.append(f"add: {e!s:.200}")
                write_ms.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=searcher, args=(i,)) for i in range(searchers)]
    threads.append(threading.Thread(target=writer))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    all_ms = [x for per in lat for x in per]
    return {"seconds": round(wall, 1), "searchers": searchers, "searches": len(all_ms),
            "searches_per_s": round(len(all_ms) / wall, 1),
            "p50_ms": round(pct(all_ms, 50), 2), "p99_ms": round(pct(all_ms, 99), 2),
            "p99_over_p50": round(pct(all_ms, 99) / pct(all_ms, 50), 2),
            "errors": len(errors), "error_samples": errors[:5],
            "writes": len(write_ms), "passages_acked": len(acked), "write_p50_ms": round(pct(write_ms, 50), 1),
            "acked_ids": acked}


def paired(url: str, mem: Memory, queries: list[str]) -> tuple[list[float], list[float], list[float]]:
    """Each query through the server (httpx, then http.client), then through ``Memory.search``, one at a time."""
    server_ms, stdlib_ms, lib_ms = [], [], []
    conn = http.client.HTTPConnection(*url.removeprefix("http://").split(":"), timeout=60)
    with httpx.Client(base_url=url, timeout=60) as c:
        for q in queries:
            body = {"query": q, "k": 10, "namespace": "docs"}
            t = time.perf_counter()
            r = c.post("/v1/search", json=body)
            server_ms.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
            t = time.perf_counter()
            conn.request("POST", "/v1/search", body=json.dumps(body), headers={"content-type": "application/json"})
            raw = conn.getresponse()
            answer = raw.read()
            stdlib_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            hits = mem.search(q, 10, namespace="docs")
            lib_ms.append((time.perf_counter() - t) * 1000)
            expected = [h.id for h in hits]  # the same search, three ways
            assert [h["id"] for h in r.json()["hits"]] == expected == [h["id"] for h in json.loads(answer)["hits"]]
    conn.close()
    return server_ms, stdlib_ms, lib_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--searchers", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16, help="passages per add request of the writer")
    ap.add_argument("--idle-queries", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"needs {DATA} (the shared evaluation data)")
    corpus = read_jsonl(DATA / "corpus.jsonl", args.passages + 500)
    docs = [f"{d['title']} {d['text']}".strip() for d in corpus[: args.passages]]
    notes = [f"{d['title']} {d['text']}".strip()[:400] for d in corpus[args.passages :]]
    queries = [q["text"] for q in read_jsonl(DATA / "queries.jsonl", 500)]
    idle_q = queries[: args.idle_queries]
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "load.db"
        with Memory(store) as mem:
            mem.add(docs, namespace="docs", progress=False)
        proc, url = start_server(store)
        try:
            result = {"url": url, "passages": args.passages, "batch": args.batch, "cpu_count": os.cpu_count()}
            with Memory(store) as mem:
                paired(url, mem, idle_q[:20])  # warm-up: connection, model and kernels on both sides
                result["load"] = load(url, queries, notes, seconds=args.seconds, searchers=args.searchers,
                                      batch=args.batch)
                acked = result["load"].pop("acked_ids")
            with Memory(store, check=False) as fresh:  # a fresh open: what is on disk, the writer's passages too
                result["load"]["lost_writes"] = len(set(acked) - set(fresh.ids("notes")))
                server_ms, stdlib_ms, lib_ms = paired(url, fresh, idle_q)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        diff = [a - b for a, b in zip(server_ms, lib_ms, strict=True)]
        diff_stdlib = [a - b for a, b in zip(stdlib_ms, lib_ms, strict=True)]
        result["idle"] = {
            "queries": len(idle_q),
            "server_p50_ms": round(pct(server_ms, 50), 2), "server_p99_ms": round(pct(server_ms, 99), 2),
            "server_stdlib_client_p50_ms": round(pct(stdlib_ms, 50), 2),
            "library_p50_ms": round(pct(lib_ms, 50), 2), "library_p99_ms": round(pct(lib_ms, 99), 2),
            "overhead_p50_ms": round(pct(diff, 50), 2),
            "overhead_stdlib_client_p50_ms": round(pct(diff_stdlib, 50), 2),
            "server_over_library_p50": round(pct(server_ms, 50) / pct(lib_ms, 50), 3),
            "load_avg_1min": round(os.getloadavg()[0], 2),
        }
        result["load"]["p50_over_library_p50"] = round(result["load"]["p50_ms"] / pct(lib_ms, 50), 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
