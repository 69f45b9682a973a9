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

With ``--embed-n N`` it then times ingest *with* embedding (issue 19's other target: ≥ 0.9 × the
plain embedder's passages/s for both stores) on the first N passages, rounds interleaved again:
the library's ``Embedder().encode(texts)`` alone, and ``Memory.add(texts)`` (no embeddings
passed: it embeds them, with its default backend) into a new ``hints`` and a new ``text`` store,
each model loaded before its clock starts; reported per round and as the median of the rounds.
Also, per add, the share of its seconds spent in its own embedding calls: the same ratio taken
within one run, which the embedder's speed drifting between runs (±10 % here) does not move.

    .venv/bin/python benchmarks/ingest_vs_peers.py --rounds 2      # or: make bench-ingest
    .venv/bin/python benchmarks/ingest_vs_peers.py --rounds 3 --embed-n 1024 --embed-rounds 2
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


def embedder_encode(folder: Path, texts, emb) -> tuple[float, int]:
    """The plain embedder alone: ``Embedder().encode(texts)`` (the library's, its default backend), model loaded first."""
    from hashmem.memory.embedding.embedder import Embedder

    embedder = Embedder()
    embedder.encode(["warm up"])
    t = time.perf_counter()
    n = len(embedder.encode(texts))
    return time.perf_counter() - t, n


EMBED_SECONDS: dict[str, list[float]] = {}  # runner → per round, seconds the add spent in its own embedding calls


def hashmem_embed_add(fidelity: str) -> Callable[[Path, list[str], object], tuple[float, int]]:
    """``Memory.add(texts)`` embedding them itself (no embeddings passed), model loaded first.

    The seconds spent inside the add's embedding calls (``Memory._embed``) are kept too: the
    embedding's share of the add, within one run, is the ratio to the embedder free of the drift
    between runs (when the add embeds as fast as the plain embedder does).
    """
    from hashmem.memory import Memory

    plain = hashmem_add(fidelity)

    def run(folder: Path, texts, emb) -> tuple[float, int]:
        spent, real = [0.0], Memory._embed

        ours = set(texts)  # the passages' own embedding, not the quantizer's calibration (store work)

        def timed(self, batch, **kw):
            t = time.perf_counter()
            try:
                return real(self, batch, **kw)
            finally:
                if batch and batch[0] in ours:
                    spent[0] += time.perf_counter() - t

        Memory._embed = timed
        try:
            out = plain(folder, texts, None)
        finally:
            Memory._embed = real
        EMBED_SECONDS.setdefault(f"hashmem {fidelity} + embed", []).append(spent[0])
        return out

    return run


def timed_rounds(runners: dict[str, Callable], texts, emb, rounds: int, label: str) -> dict[str, list[float]]:
    """Seconds of each runner per round, the runners interleaved within each round, each in a new folder."""
    seconds: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(rounds):
        for name, fn in runners.items():
            folder = Path(tempfile.mkdtemp(prefix="ingest-peers-"))
            try:
                dt, n = fn(folder, texts, emb)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            if n != len(texts):
                raise SystemExit(f"{name} stored {n} of {len(texts)} passages")
            seconds[name].append(dt)
            print(f"{label} round {r + 1}: {name:20s} {dt:7.2f} s  {len(texts) / dt:8.1f} passages/s",
                  file=sys.stderr)
    return seconds


def per_round(seconds: dict[str, list[float]], pairs: list[tuple[str, str, str]]) -> dict[str, list[float]]:
    """name → each round's own ratio of passages/s (its runs were back to back, under the same load)."""
    return {name: [round(b / a, 3) for a, b in zip(seconds[num], seconds[den], strict=True)]
            for name, num, den in pairs if num in seconds and den in seconds}


def median(values: list[float]) -> float:
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else round((v[len(v) // 2 - 1] + v[len(v) // 2]) / 2, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5183)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--embed-n", type=int, default=0,
                    help="also time Memory.add embedding the first N passages itself against the plain embedder (0: not)")
    ap.add_argument("--embed-rounds", type=int, default=0, help="rounds of the embedding part (default: --rounds)")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    load_start = os.getloadavg()
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
    seconds = timed_rounds(runners, texts, emb, args.rounds, "precomputed")
    rate = {k: len(texts) / min(v) for k, v in seconds.items()}
    ratios = {}
    if "chroma" in rate:
        ratios = {"hints / chroma": rate["hashmem hints"] / rate["chroma"],
                  "text / chroma": rate["hashmem text"] / rate["chroma"]}
    if "lancedb" in rate:
        ratios |= {"hints / lancedb": rate["hashmem hints"] / rate["lancedb"],
                   "text / lancedb": rate["hashmem text"] / rate["lancedb"]}
    pairs = [(f"{side} / {peer}", f"hashmem {side}", peer) for peer in ("chroma", "lancedb") for side in ("hints", "text")]
    rounds = per_round(seconds, pairs)
    embedding = {}
    if args.embed_n:  # with embedding: Memory.add embeds, next to the plain embedder on the same passages
        sub = texts[: args.embed_n]
        e_runners = {"embedder": embedder_encode, "hashmem hints + embed": hashmem_embed_add("hints"),
                     "hashmem text + embed": hashmem_embed_add("text")}
        e_seconds = timed_rounds(e_runners, sub, None, args.embed_rounds or args.rounds, "with embedding")
        e_rounds = per_round(e_seconds, [("hints / embedder", "hashmem hints + embed", "embedder"),
                                         ("text / embedder", "hashmem text + embed", "embedder")])
        embedding = {"passages": len(sub), "seconds": e_seconds,
                     "passages_per_s_best": {k: round(len(sub) / min(v), 2) for k, v in e_seconds.items()},
                     "ratios_per_round": e_rounds, "ratios_median_of_rounds": {k: median(v) for k, v in e_rounds.items()},
                     "targets": {"hints / embedder": 0.9, "text / embedder": 0.9},
                     # same run: the add's own embedding seconds ÷ the add's seconds, per round and their median
                     "embedding_share_of_add": {k: [round(e / a, 3) for e, a in zip(v, e_seconds[k], strict=True)]
                                                for k, v in EMBED_SECONDS.items()},
                     "embedding_share_median": {k: median([round(e / a, 3) for e, a in zip(v, e_seconds[k], strict=True)])
                                                for k, v in EMBED_SECONDS.items()}}
    out = {
        "command": " ".join([".venv/bin/python", "benchmarks/ingest_vs_peers.py", *sys.argv[1:]]),
        "passages": len(texts), "mean_chars": sum(map(len, texts)) / len(texts), "rounds": args.rounds,
        "passages_per_s_best": {k: round(v, 1) for k, v in rate.items()},
        "seconds": seconds, "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "ratios_per_round": rounds,
        "ratios_median_of_rounds": {k: median(v) for k, v in rounds.items()},
        "targets": {"hints / chroma": 1.0, "text / chroma": 0.7},
        "with_embedding": embedding,
        "skipped": skipped, "versions": versions, "load_average_start": load_start, "load_average": os.getloadavg(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("passages_per_s_best", "ratios", "ratios_median_of_rounds", "skipped")}
                     | {"with_embedding": {k: v for k, v in embedding.items() if k != "seconds"}}, indent=1))


if __name__ == "__main__":
    main()
