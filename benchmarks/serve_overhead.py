"""Where a search's server overhead goes: the library, the service, the ASGI app, and HTTP over loopback.

One process, one store (``--passages`` scifact-train passages), the same query
set through these paths in interleaved rounds (so machine load hits all alike):

- ``library``: ``Memory.search``;
- ``service``: ``Service.search`` (tenancy check, embedding outside the lock, read lock);
- ``asgi_route``: the app without the lean search path (``create_app(lean_search=False)``),
  called directly as ASGI on an event loop running in a thread (routing, dependency
  solving, body validation, principal, threadpool hop, JSON; plus one hop to that loop's
  thread) — no sockets;
- ``asgi``: the same with the lean path (``server/fastsearch.py``), as ``hashmem serve`` runs;
- ``http``: the lean app under uvicorn on 127.0.0.1 and an httpx client (HTTP parsing,
  loopback TCP, the client; client and server share this process's GIL, so this is an
  upper bound);
- ``http_stdlib``: the same server and the standard library's ``http.client`` on one
  kept-alive connection: the difference to ``http`` is the client's own cost.

Run:  HF_HUB_OFFLINE=1 flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/serve_overhead.py \\
          --json benchmarks/results/serve_overhead.json
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from serve_load import read_jsonl as jsonl  # noqa: E402  (this folder: one JSONL reader)

from hashmem.memory import Memory  # noqa: E402
from hashmem.server.app import create_app, running  # noqa: E402
from hashmem.server.service import Service  # noqa: E402
from hashmem.server.tenancy import OPEN  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train"


def asgi_call(loop, app, body: bytes):
    async def call():
        sent, msgs = [], [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            return msgs.pop(0) if msgs else {"type": "http.disconnect"}

        async def send(m):
            sent.append(m)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/search", "raw_path": b"/v1/search", "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
                 "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(sent)

    # one event loop, kept running in a thread, for all calls: its threadpool workers stay alive as under uvicorn
    asyncio.run_coroutine_threadsafe(call(), loop).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"needs {DATA} (the shared evaluation data)")
    docs = [f"{d['title']} {d['text']}".strip() for d in jsonl(DATA / "corpus.jsonl", args.passages)]
    queries = [q["text"] for q in jsonl(DATA / "queries.jsonl", args.queries)]
    ms: dict[str, list[float]] = {k: [] for k in ("library", "service", "asgi_route", "asgi", "http", "http_stdlib")}
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "o.db") as mem:
        mem.add(docs, namespace="docs", progress=False)
        service = Service(mem, decoder="extractive")
        service.warm_up()
        app, route_app = create_app(service), create_app(service, lean_search=False)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            conn = http.client.HTTPConnection(*url.removeprefix("http://").split(":"), timeout=60)

            def body(q: str) -> bytes:
                return json.dumps({"query": q, "k": 10, "namespace": "docs"}).encode()

            def stdlib(q: str) -> None:
                conn.request("POST", "/v1/search", body=body(q), headers={"content-type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError(r.status)

            paths = {
                "library": lambda q: mem.search(q, 10, namespace="docs"),
                "service": lambda q: service.search(OPEN, q, 10, namespace="docs"),
                "asgi_route": lambda q: asgi_call(loop, route_app, body(q)),
                "asgi": lambda q: asgi_call(loop, app, body(q)),
                "http": lambda q: client.post("/v1/search", json={"query": q, "k": 10, "namespace": "docs"}),
                "http_stdlib": stdlib,
            }
            for fn in paths.values():  # warm-up
                for q in queries[:5]:
                    fn(q)
            for _ in range(args.rounds):
                for q in queries:
                    for name, fn in paths.items():
                        t = time.perf_counter()
                        fn(q)
                        ms[name].append((time.perf_counter() - t) * 1000)
    p50 = {k: round(float(np.median(v)), 3) for k, v in ms.items()}
    result = {"passages": args.passages, "searches_per_path": len(ms["library"]), "p50_ms": p50,
              "over_library_p50_ms": {k: round(v - p50["library"], 3) for k, v in p50.items() if k != "library"},
              "lean_path_saves_p50_ms": round(p50["asgi_route"] - p50["asgi"], 3),
              "load_avg_1min": os.getloadavg()[0]}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
