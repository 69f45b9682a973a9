"""Ingest with precomputed embeddings: hashmem ``hints`` and ``text`` stores next to Chroma and LanceDB, one run.

The same passages (SciFact-train's 5,183 abstracts, title + text) and the same embeddings
(structured random unit vectors [n, 384] float32, as ``ingest_profile.py`` makes them) go
into each store, persistent and on disk in a new temporary folder:

- hashmem: ``Memory(path, fidelity=...).add(texts, embeddings=emb)`` (the model is loaded
  before the clock starts: the embedder is not what is measured);
- Chroma: ``PersistentClient(path)``, a cosine collection, ``collection.add(ids, embeddings,
  documents)`` in batches of the client's ``max_batch_size``;
- LanceDB: ``lancedb.connect(path).create_table(name, data)`` with id, text and vector columns
  (no ANN index: LanceDB builds none unless asked, and searches flat).

Each store is timed ``--rounds`` times, the rounds interleaved (hints, text, Chroma, LanceDB,
hints, …) so a noisy neighbour hurts all alike; passages/s is the best round's. Reported:
passages/s of each, and the targets' ratios of issue 19 (of the best rounds, and the median of
each round's own ratio, less moved by the load drifting over the run): hashmem ``hints`` / Chroma (≥ 1.0) and
``text`` / Chroma (≥ 0.7). A peer that does not import is skipped, its reason in the JSON and
on stderr.

    .venv/bin/python benchmarks/ingest_vs_peers.py --rounds 2      # or: make bench-ingest
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # Chroma's

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_profile import workload  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "ingest_vs_peers.json"


def hashmem_add(fidelity: str) -> Callable[[Path, list[str], object], int]:
    def run(folder: Path, texts, emb) -> tuple[float, int]:
        from hashmem.memory import Memory

        with Memory(folder / "store.db", fidelity=fidelity) as mem:
            mem.embedder.encode(["warm up"])
            t = time.perf_counter()
            n = len(mem.add(texts, embeddings=emb, progress=False))
            return time.perf_counter() - t, n

    return run


def chroma_add(folder: Path, texts, emb) -> tuple[float, int]:
    import chromadb

    t = time.perf_counter()
    client = chromadb.PersistentClient(path=str(folder))
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    step = client.get_max_batch_size()
    for s in range(0, len(texts), step):
        col.add(ids=[str(i) for i in range(s, min(s + step, len(texts)))], embeddings=emb[s : s + step],
                documents=texts[s : s + step])
    seconds = time.perf_counter() - t
    n = col.count()
    del col, client
    return seconds, n


def lancedb_add(folder: Path, texts, emb) -> tuple[float, int]:
    import lancedb
    import pyarrow as pa

    t = time.perf_counter()
    db = lancedb.connect(str(folder))
    data = pa.table({
        "id": pa.array(range(len(texts)), pa.int64()),
        "text": pa.array(texts, pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), emb.shape[1]),
    })
    table = db.create_table("bench", data=data)
    seconds = time.perf_counter() - t
    return seconds, table.count_rows()


PEERS = {"chroma": ("chromadb", chroma_add), "lancedb": ("lancedb", lancedb_add)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5183)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    texts, emb = workload(args.n)
    runners: dict[str, Callable] = {"hashmem hints": hashmem_add("hints"), "hashmem text": hashmem_add("text")}
    skipped = {}
    versions = {}
    for name, (module, fn) in PEERS.items():
        try:
            mod = __import__(module)
            versions[name] = getattr(mod, "__version__", "?")
            runners[name] = fn
        except Exception as e:  # noqa: BLE001 - any reason a peer cannot run is reported, not fatal
            skipped[name] = f"{type(e).__name__}: {e}"
            print(f"skipped {name}: {skipped[name]}", file=sys.stderr)
    seconds: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(args.rounds):
        for name, fn in runners.items():
            folder = Path(tempfile.mkdtemp(prefix="ingest-peers-"))
            try:
                dt, n = fn(folder, texts, emb)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            if n != len(texts):
                raise SystemExit(f"{name} stored {n} of {len(texts)} passages")
            seconds[name].append(dt)
            print(f"round {r + 1}: {name:14s} {dt:7.2f} s  {len(texts) / dt:8.0f} passages/s", file=sys.stderr)
    rate = {k: len(texts) / min(v) for k, v in seconds.items()}
    ratios = {}
    if "chroma" in rate:
        ratios = {"hints / chroma": rate["hashmem hints"] / rate["chroma"],
                  "text / chroma": rate["hashmem text"] / rate["chroma"]}
    if "lancedb" in rate:
        ratios |= {"hints / lancedb": rate["hashmem hints"] / rate["lancedb"],
                   "text / lancedb": rate["hashmem text"] / rate["lancedb"]}
    per_round = {}  # each round's own ratios: its stores ran back to back, under the same load
    for peer in ("chroma", "lancedb"):
        if peer in seconds:
            for side in ("hints", "text"):
                per_round[f"{side} / {peer}"] = [round(p / h, 3) for h, p in
                                                 zip(seconds[f"hashmem {side}"], seconds[peer], strict=True)]
    out = {
        "command": " ".join([".venv/bin/python", "benchmarks/ingest_vs_peers.py", *sys.argv[1:]]),
        "passages": len(texts), "mean_chars": sum(map(len, texts)) / len(texts), "rounds": args.rounds,
        "passages_per_s_best": {k: round(v, 1) for k, v in rate.items()},
        "seconds": seconds, "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "ratios_per_round": per_round,
        "ratios_median_of_rounds": {k: sorted(v)[len(v) // 2] for k, v in per_round.items()},
        "targets": {"hints / chroma": 1.0, "text / chroma": 0.7},
        "skipped": skipped, "versions": versions, "load_average": os.getloadavg(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("passages_per_s_best", "ratios", "ratios_median_of_rounds", "skipped")},
                     indent=1))


if __name__ == "__main__":
    main()
