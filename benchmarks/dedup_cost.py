"""What near-duplicate detection costs at ingest, whether it finds every exact copy, and whether it needs a graph.

**Ingest** (one interleaved run): ``Memory.add`` of SciFact (5,183 abstracts, title + text)
into a fresh ``hints`` store with ``dedup="keep"`` (today's add), ``"skip"`` and
``"replace"``, the three in a rotating order each round, from embeddings made once (the
pipeline alone: quantize, hash, hints, dedup, insert, upkeep); the time inside
``dedup.classify`` is summed on the side. Ratios are of medians, and the median of each
round's own ratio; the embedding pass is timed in the same run and added to both sides
for the ratio a user sees (``hashmem add`` embeds).

**Exact copies of stored passages** (no text hash is stored): the first ``--exact`` SciFact
passages are embedded again in other batches (batch size 64 instead of 32, over a subset:
other neighbours, other padding, other dynamic int8 ranges in the ONNX model) and looked up through the real path (``dedup.best_stored``: Hamming
candidates, then int8 cosine) in the store that holds them all. Reported: how many found
a record with the same normalized text, and the lowest such score; ``--threshold`` misses.

**What a stored text hash would cost**: the same store copied with a side table
``text_keys(id INTEGER PRIMARY KEY, key BLOB)`` of 16-byte keys, both vacuumed: bytes per passage.

**Candidate stage at 1M codes** (is an in-RAM neighbour graph, hnswlib, needed?): 1,000,000
random 256-bit codes in one namespace of the in-RAM index, 256 query codes (one add batch)
searched in one ``search_many`` call for their 32 nearest, brute force and in the IVF layout
the index uses from 200,000 rows; ms per passage against the embedding's ms per passage.

    .venv/bin/python benchmarks/dedup_cost.py --rounds 5 --out benchmarks/results/dedup_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hashmem.memory import Memory, dedup
from hashmem.memory.backends.local.index import HammingIndex
from hashmem.memory.embedding.embedder import Embedder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "scifact-train"
POLICIES = ("keep", "skip", "replace")


def load_texts() -> list[str]:
    with open(DATA / "corpus.jsonl") as f:
        return [f"{d['title']} {d['text']}".strip() for d in map(json.loads, f)]


def ingest(texts: list[str], emb: np.ndarray, rounds: int, tmp: Path) -> dict:
    times: dict[str, list[float]] = {p: [] for p in POLICIES}
    in_classify: dict[str, list[float]] = {p: [] for p in POLICIES}
    real = dedup.classify
    spent = [0.0]

    def timed(*a, **kw):
        t0 = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            spent[0] += time.perf_counter() - t0

    dedup.classify = timed
    repeats = {}
    try:
        for r in range(rounds):
            order = POLICIES[r % 3:] + POLICIES[: r % 3]
            for policy in order:
                path = tmp / f"{policy}{r}.db"
                with Memory(path) as mem:
                    spent[0] = 0.0
                    t0 = time.perf_counter()
                    ids = mem.add(texts, dedup=policy, embeddings=emb, progress=False)
                    times[policy].append(time.perf_counter() - t0)
                    in_classify[policy].append(spent[0])
                    repeats[policy] = len(ids) - len(set(ids))
                if r < rounds - 1 or policy != "keep":
                    for suffix in ("", "-wal", "-shm"):
                        Path(str(path) + suffix).unlink(missing_ok=True)
    finally:
        dedup.classify = real
    med = {p: statistics.median(v) for p, v in times.items()}
    per_round = {p: statistics.median(a / b for a, b in zip(times[p], times["keep"], strict=True))
                 for p in ("skip", "replace")}
    return {"passages": len(texts), "rounds": rounds, "seconds": times,
            "classify_seconds": in_classify, "median_seconds": med,
            "ratio_of_medians": {p: round(med[p] / med["keep"], 3) for p in ("skip", "replace")},
            "median_of_round_ratios": {p: round(v, 3) for p, v in per_round.items()},
            "repeats_found": repeats, "keep_store": str(tmp / f"keep{rounds - 1}.db")}


def exact_copies(store: Path, all_texts: list[str], n: int, threshold: float) -> dict:
    texts = all_texts[:n]
    with Memory(store) as mem:
        ids = mem.ids()
        key_of = {i: dedup.text_key(t) for i, t in zip(ids, all_texts, strict=True)}
        t0 = time.perf_counter()
        emb = Embedder(mem.config.model, batch_size=64).encode(texts, progress=False)
        embed_s = time.perf_counter() - t0
        qv = mem.quantizer.encode(emb)
        deq = mem.quantizer.decode(qv)
        codes = mem.hasher.encode(deq)
        found, scores, missed = 0, [], []
        for s in range(0, len(texts), 256):
            best = dedup.best_stored(mem.backend, mem.hasher, mem.quantizer, "default", deq[s : s + 256],
                                     codes[s : s + 256])
            for j, b in enumerate(best):
                own = ids[s + j]
                if b is not None and key_of[b[0]] == key_of[own]:
                    found += 1
                    scores.append(b[1])
                    if b[1] < threshold:
                        missed.append(own)
                else:
                    missed.append(own)
    return {"passages": len(texts), "reembedded_with_batch_size": 64, "embed_seconds": round(embed_s, 2),
            "found_a_record_with_the_same_text": found, "lowest_score": round(min(scores), 6),
            "scores_below_0.999": int(sum(x < 0.999 for x in scores)),
            "missed_at_threshold": len(missed), "threshold": threshold}


def hash_table_bytes(store: Path, tmp: Path) -> dict:
    plain, keyed = tmp / "plain.db", tmp / "keyed.db"
    for dst in (plain, keyed):
        shutil.copy(store, dst)
    c = sqlite3.connect(keyed)
    n = c.execute("SELECT count(*) FROM records").fetchone()[0]
    with c:
        c.execute("CREATE TABLE text_keys (id INTEGER PRIMARY KEY, key BLOB NOT NULL)")
        c.executemany("INSERT INTO text_keys VALUES (?, ?)",
                      [(i, os.urandom(16)) for (i,) in c.execute("SELECT id FROM records").fetchall()])
    c.close()
    sizes = {}
    for name, path in (("plain", plain), ("keyed", keyed)):
        c = sqlite3.connect(path)
        c.execute("VACUUM")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        sizes[name] = path.stat().st_size + Path(str(path) + "-wal").stat().st_size \
            if Path(str(path) + "-wal").exists() else path.stat().st_size
    return {"records": n, "file_bytes": sizes, "bytes_per_passage": round(sizes["plain"] / n, 1),
            "added_bytes_per_passage": round((sizes["keyed"] - sizes["plain"]) / n, 1)}


def candidate_stage(n: int, queries: int, k: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    q = codes[rng.choice(n, queries, replace=False)] ^ (rng.random((queries, 32)) < 0.05).astype(np.uint8)
    out = {}
    for layout, ivf_min_rows in (("brute_force", None), ("ivf", -1)):
        index = HammingIndex(256, ivf_min_rows=ivf_min_rows)
        index.add("default", np.arange(1, n + 1), codes)
        index.search_many("default", q[:1], k)  # the layout is built at the first search
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            index.search_many("default", q, k)
            ts.append(time.perf_counter() - t0)
        out[layout] = {"ms_per_batch": round(1e3 * statistics.median(ts), 2),
                       "ms_per_passage": round(1e3 * statistics.median(ts) / queries, 4),
                       "ivf_lists": index.spaces["default"].nlist}
    return {"codes": n, "bits": 256, "queries_per_call": queries, "k": k, **out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="first N SciFact passages only (a quick look)")
    ap.add_argument("--exact", type=int, default=1000, help="passages embedded again for the exact-copy check")
    ap.add_argument("--embeddings", type=Path, default=None, help="an .npy of the SciFact embeddings: read if "
                    "it exists, else written (a rerun skips the first embedding pass, and its time)")
    ap.add_argument("--scale", type=int, default=1_000_000, help="codes in the candidate-stage measurement")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    texts = load_texts()[: args.limit]
    result: dict = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with Memory(tmp / "embed.db") as mem:
            t0 = time.perf_counter()
            if args.embeddings and args.embeddings.exists():
                emb = np.load(args.embeddings)[: len(texts)]
                embed_s = float(json.loads(args.embeddings.with_suffix(".json").read_text())["seconds"])
            else:
                emb = mem.embedder.encode(texts, progress=False)
                embed_s = time.perf_counter() - t0
                if args.embeddings:
                    np.save(args.embeddings, emb)
                    args.embeddings.with_suffix(".json").write_text(json.dumps({"seconds": embed_s}))
            mem.add(["warm up"], embeddings=emb[:1], progress=False)  # numba's cached kernels load once per process
            mem.search_embeddings(emb[:1], 1)
        result["embed_seconds"] = round(embed_s, 2)
        result["embed_ms_per_passage"] = round(1e3 * embed_s / len(texts), 2)
        result["ingest"] = ingest(texts, emb, args.rounds, tmp)
        med = result["ingest"]["median_seconds"]
        result["ingest"]["ratio_with_embedding"] = {p: round((embed_s + med[p]) / (embed_s + med["keep"]), 3)
                                                    for p in ("skip", "replace")}
        sys.stderr.write(json.dumps({k: result["ingest"][k] for k in ("ratio_of_medians", "median_of_round_ratios",
                                                                      "ratio_with_embedding")}) + "\n")
        store = Path(result["ingest"].pop("keep_store"))
        result["exact_copies"] = exact_copies(store, texts, args.exact, dedup.DEFAULT_THRESHOLD)
        sys.stderr.write(json.dumps(result["exact_copies"]) + "\n")
        result["text_hash_table"] = hash_table_bytes(store, tmp)
        sys.stderr.write(json.dumps(result["text_hash_table"]) + "\n")
    result["candidate_stage"] = candidate_stage(args.scale, 256, dedup.DEDUP_CANDIDATES, 5)
    sys.stderr.write(json.dumps(result["candidate_stage"]) + "\n")
    result["load_after"] = os.getloadavg()
    result["command"] = " ".join(["benchmarks/dedup_cost.py", *sys.argv[1:]])
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
