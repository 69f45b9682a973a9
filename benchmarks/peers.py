"""hashmem next to the vector stores people use instead: the same passages, embeddings and queries, one run.

Passages: SciFact-train's 5,183 (title + abstract) with its 809 judged train queries and
their qrels; with ``--n`` above 5,183, distractors are added after them: 20 Newsgroups
posts chunked at 64 tokens (``embed_cache.distractor_passages``), never relevant to a
SciFact query, so nDCG@10 stays meaningful (the qrels are SciFact's) and harder.
Embeddings: all-MiniLM-L6-v2 (hashmem's default onnx-int8 backend), computed once and
cached (``eval_grid.cached_embeddings``; distractors by ``embed_cache.py --distractors``);
every store is given the same float32 vectors and every query the same query vector.

For each store of ``peer_stores.stores()`` (a peer whose library does not import is skipped,
the reason printed and kept in the JSON):

- **ingest**: passages/s of building the store from texts + embeddings, in a new folder
  (hashmem's embedder loaded before the clock; it is not used);
- **bytes/passage**: every file in the store's folder after it is closed, ÷ passages (texts
  kept, except hashmem ``hints``, which keeps none);
- **cold open** and **RSS**: in a fresh process (libraries imported first, their time
  apart): open the store and answer the first query (ms); the process's RSS after 100
  more queries, and what the open store added to the RSS after imports (OS page cache
  warm: nothing is dropped);
- **nDCG@10**, **recall@10 vs float32** (share of the exact float32 top 10 found), and
  query **p50/p90** ms: every judged query, k = 10, through every store and search mode
  round robin (the order rotating each query), so the machine's noise is shared;
- **fetch**: ms to get the texts of a query's 10 hits by id, round robin over the first
  100 queries (p50).

hashmem is searched ``binary+int8`` and ``hybrid`` (BM25 of the query words in the third
stage, the store's default weight; the peers search float32 vectors or sign bits). The
``llm`` tier is slow to ingest (about 1 s a passage), so it is measured apart on the first
``--llm-subset`` passages, next to a ``text`` store of the same passages.

    .venv/bin/python benchmarks/peers.py                 # 5k: benchmarks/results/peers_5k.json (make bench-peers)
    .venv/bin/python benchmarks/embed_cache.py --distractors 94817   # once, ~1 h on 2 cores
    .venv/bin/python benchmarks/peers.py --n 100000 --llm-subset 0   # peers_100k.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # Chroma's

import peer_stores  # noqa: E402

K = 10
FETCH_QUERIES = 100
RSS_QUERIES = 100


def load(n: int):
    """(dataset, texts, embeddings [n, dim], query embeddings, distractors used)."""
    from embed_cache import cached_distractors
    from eval_grid import DATA, cached_embeddings

    from hashmem.evaluation import retrieval as ev
    from hashmem.memory.embedding.embedder import DEFAULT_MODEL

    data = ev.load_beir(DATA / "scifact-train")
    docs, queries = cached_embeddings(data, DEFAULT_MODEL)
    texts = list(data.doc_texts)
    extra = max(n - len(texts), 0)
    if extra:
        more, emb = cached_distractors(extra)
        if len(more) < extra:
            print(f"only {len(more)} of {extra} distractors are embedded (run embed_cache.py --distractors "
                  f"{extra}); measuring {len(texts) + len(more)} passages", file=sys.stderr)
        texts += more
        docs = np.concatenate([docs, emb])
    return data, texts, np.ascontiguousarray(docs, np.float32), queries, len(texts) - len(data.doc_texts)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def probe(name: str, folder: Path, queries: Path) -> dict:
    """In a fresh process: import, open + first query, RSS after RSS_QUERIES more."""
    store = next(s for s in peer_stores.stores() if s.name == name)
    z = np.load(queries)
    q, texts = z["queries"], [str(t) for t in z["texts"]]
    t = time.perf_counter()
    store.missing()  # imports the libraries
    import_s = time.perf_counter() - t
    base = rss()
    t = time.perf_counter()
    store.open(folder)
    search = next(iter(store.modes().values()))
    search(q[0], texts[0], K)
    cold = time.perf_counter() - t
    for mode in store.modes().values():
        for i in range(min(RSS_QUERIES, len(q))):
            mode(q[i], texts[i], K)
    now = rss()
    store.close()
    return {"import_s": import_s, "open_and_first_query_ms": 1000 * cold, "rss_mb": now / 2**20,
            "rss_added_mb": (now - base) / 2**20}


def exact_top(docs: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = queries @ docs.T  # [m, n]
    part = np.argpartition(-scores, K - 1, axis=1)[:, :K]
    order = np.take_along_axis(-scores, part, 1).argsort(axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def measure(args) -> dict:
    from hashmem.evaluation import retrieval as ev

    data, texts, docs, queries, distractors = load(args.n)
    n = len(texts)
    if args.max_queries:  # a quick check of the harness: nDCG then covers these queries only
        keep = data.query_ids[: args.max_queries]
        data = dataclasses.replace(data, query_ids=keep, query_texts=data.query_texts[: args.max_queries],
                                   qrels={q: data.qrels[q] for q in keep})
        queries = queries[: args.max_queries]
    qtexts = data.query_texts
    name_of = [*data.doc_ids, *(f"distractor:{i}" for i in range(distractors))]
    exact = exact_top(docs, queries)
    stores, skipped = [], {}
    for s in peer_stores.stores():
        why = s.missing() if not args.only or s.name in args.only else "not in --only"
        if why:
            skipped[s.name] = why
            print(f"skipped {s.name}: {why}", file=sys.stderr, flush=True)
        else:
            stores.append(s)
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="hashmem-peers-"))
    tmp.mkdir(parents=True, exist_ok=True)
    np.savez(tmp / "queries.npz", queries=queries, texts=np.array(qtexts))
    rows: dict[str, dict] = {}
    try:
        for s in stores:
            folder = tmp / s.name.replace(" ", "_")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            s.warm()
            t = time.perf_counter()
            s.build(folder, texts, docs)
            dt = time.perf_counter() - t
            size = folder_bytes(folder)
            cold = json.loads(subprocess.run(
                [sys.executable, __file__, "--probe", s.name, str(folder), str(tmp / "queries.npz")],
                check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            rows[s.name] = {"version": s.version(), "ingest_s": dt, "ingest_per_s": n / dt,
                            "bytes_per_passage": size / n, "keeps_text": s.name != "hashmem hints",
                            **cold, "load_average": os.getloadavg()}
            print(f"{s.name}: {n / dt:.0f} passages/s, {size / n:.0f} B/passage, open+first query "
                  f"{cold['open_and_first_query_ms']:.0f} ms, RSS {cold['rss_mb']:.0f} MB", file=sys.stderr, flush=True)
        for s in stores:
            s.open(tmp / s.name.replace(" ", "_"))
        modes = [(s, m, fn) for s in stores for m, fn in s.modes().items()]
        for _, _, fn in modes:  # warm up
            for i in range(3):
                fn(queries[i], qtexts[i], K)
        ms = {(s.name, m): [] for s, m, _ in modes}
        runs = {(s.name, m): {} for s, m, _ in modes}
        hits = {(s.name, m): [] for s, m, _ in modes}
        for qi in range(len(qtexts)):
            for j in range(len(modes)):
                s, m, fn = modes[(qi + j) % len(modes)]
                t = time.perf_counter()
                got = fn(queries[qi], qtexts[qi], K)
                ms[(s.name, m)].append(1000 * (time.perf_counter() - t))
                runs[(s.name, m)][data.query_ids[qi]] = [name_of[p] for p in got]
                hits[(s.name, m)].append(got)
            if qi % 200 == 199:
                print(f"{qi + 1} queries: " + ", ".join(f"{n} {m} {np.median(t):.1f}" for (n, m), t in ms.items()),
                      file=sys.stderr, flush=True)
        fetch = {s.name: [] for s in stores}
        for qi in range(min(FETCH_QUERIES, len(qtexts))):
            for j in range(len(stores)):
                s = stores[(qi + j) % len(stores)]
                ids = hits[(s.name, next(iter(s.modes())))][qi]
                t = time.perf_counter()
                got = s.fetch(ids)
                fetch[s.name].append(1000 * (time.perf_counter() - t))
                if s.name != "hashmem hints" and got != [texts[p] for p in ids]:
                    raise SystemExit(f"{s.name} returned other texts than it was given")
        for s in stores:
            s.close()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    exact_run = {q: [name_of[p] for p in exact[i]] for i, q in enumerate(data.query_ids)}
    searches = {"float32 exact (numpy, in RAM)": {**ev.score_run(exact_run, data.qrels)}}
    for (name, m), run in runs.items():
        overlap = np.mean([len(set(h) & set(exact[i].tolist())) / K for i, h in enumerate(hits[(name, m)])])
        t = np.array(ms[(name, m)])
        searches[f"{name} | {m}"] = {
            "store": name, "mode": m, **ev.score_run(run, data.qrels), "recall@10_vs_float32": float(overlap),
            "p50_ms": float(np.percentile(t, 50)), "p90_ms": float(np.percentile(t, 90)),
            "fetch_10_texts_p50_ms": None if name == "hashmem hints" else float(np.median(fetch[name]))}
    return {"passages": n, "scifact_passages": len(data.doc_texts), "distractors": distractors,
            "mean_chars": float(np.mean([len(t) for t in texts])), "queries": len(qtexts),
            "stores": rows, "searches": searches, "skipped": skipped}


def llm_subset(m: int) -> dict:
    """The llm tier next to a text store on the first m SciFact passages: ingest, bytes, fetch."""
    data, texts, docs, _, _ = load(0)
    texts, docs = texts[:m], docs[:m]
    out = {}
    for s in (peer_stores.Hashmem("llm"), peer_stores.Hashmem("text")):
        with tempfile.TemporaryDirectory(prefix="hashmem-peers-llm-") as tmp:
            s.warm()
            t = time.perf_counter()
            s.build(Path(tmp), texts, docs)
            dt = time.perf_counter() - t
            size = folder_bytes(Path(tmp))
            s.open(Path(tmp))
            fetch = []
            for r in range(3):
                ids = list(range(10 * r, 10 * r + 10))
                t = time.perf_counter()
                got = s.fetch(ids)
                fetch.append(1000 * (time.perf_counter() - t))
                assert got == [texts[p] for p in ids], "a tier returned other texts"
            s.close()
        out[s.name] = {"passages": m, "ingest_per_s": m / dt, "bytes_per_passage": size / m,
                       "fetch_10_texts_p50_ms": float(np.median(fetch)), "load_average": os.getloadavg()}
        print(f"{s.name} ({m} passages): {m / dt:.1f} passages/s, {size / m:.0f} B/passage, fetch 10 "
              f"{np.median(fetch):.0f} ms", file=sys.stderr, flush=True)
    return out


def table(r: dict) -> str:
    """The markdown table of one result: one row per store and search mode."""
    lines = ["| store | search | B/passage | nDCG@10 | R@10 vs f32 | p50 / p90 ms | fetch 10 texts ms "
             "| ingest /s | RSS MB | open+1st query ms |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, s in r["searches"].items():
        if "store" not in s:
            lines.append(f"| {key} | exact | 1,536 (vector only) | {s['ndcg@10']:.4f} | 1.000 | | | | | |")
            continue
        st = r["stores"][s["store"]]
        size = f"{st['bytes_per_passage']:,.0f}" + ("" if st["keeps_text"] else " (no text)")
        fetch = "—" if s["fetch_10_texts_p50_ms"] is None else f"{s['fetch_10_texts_p50_ms']:.2f}"
        lines.append(f"| {s['store']} | {s['mode']} | {size} | {s['ndcg@10']:.4f} | {s['recall@10_vs_float32']:.3f} "
                     f"| {s['p50_ms']:.2f} / {s['p90_ms']:.2f} | {fetch} | {st['ingest_per_s']:,.0f} "
                     f"| {st['rss_mb']:.0f} | {st['open_and_first_query_ms']:.0f} |")
    return "\n".join(lines)


def short_table(r: dict) -> str:
    """The README's table: hashmem's rows and each peer's, bytes, quality and p50 (``--report JSON``)."""
    lines = ["| store, search | bytes/passage, text kept | nDCG@10 | recall@10 vs float32 | query p50 ms |",
             "|---|---:|---:|---:|---:|"]
    for s in r["searches"].values():
        if "store" not in s:
            continue
        st = r["stores"][s["store"]]
        size = f"{st['bytes_per_passage']:,.0f}" + ("" if st["keeps_text"] else " (no text)")
        name = f"**{s['store']}, {s['mode']}**" if s["mode"] == "hybrid" else f"{s['store']}, {s['mode']}"
        lines.append(f"| {name} | {size} | {s['ndcg@10']:.3f} | {s['recall@10_vs_float32']:.3f} | {s['p50_ms']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--probe":
        print(json.dumps(probe(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--report":  # render the tables of a result again
        r = json.loads(Path(sys.argv[2]).read_text())
        print(f"Command: `{r['command']}`\n\n{short_table(r)}\n\n{table(r)}")
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5183, help="passages: SciFact's, then distractors")
    ap.add_argument("--llm-subset", type=int, default=200, help="passages of the llm tier's run (0: none)")
    ap.add_argument("--only", nargs="*", default=None, help="store names to run (default: all)")
    ap.add_argument("--keep", type=Path, default=None, help="build the stores in this folder and keep them")
    ap.add_argument("--max-queries", type=int, default=0, help="the first N judged queries only (a quick check)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    t = time.perf_counter()
    load0 = os.getloadavg()
    result = {"command": " ".join([".venv/bin/python", "benchmarks/peers.py", *sys.argv[1:]]),
              "load_average_start": load0, **measure(args)}
    size = "5k" if result["passages"] < 10_000 else f"{round(result['passages'] / 1000)}k"
    out = args.out or ROOT / "benchmarks" / "results" / f"peers_{size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result["table"] = table(result)
    out.write_text(json.dumps(result, indent=1) + "\n")  # kept if the llm tier's run fails
    if args.llm_subset:
        result["llm_subset"] = llm_subset(args.llm_subset)
    result["load_average_end"] = os.getloadavg()
    result["seconds"] = time.perf_counter() - t
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(result["table"])
    print(f"written: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
