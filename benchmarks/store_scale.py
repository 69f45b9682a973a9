"""Item 2 of issue 4: resident memory per passage of an opened store, and where the int8 vectors come from.

    # a store of synthetic passages through Memory.add (embeddings given: nothing is embedded),
    # then grown to 1M with the same hasher and quantizer by direct inserts
    .venv/bin/python benchmarks/store_scale.py build /tmp/hm-1m.db --n 70000
    .venv/bin/python benchmarks/store_scale.py extend /tmp/hm-1m.db --n 1000000   # then stores the IVF lists
    # RSS growth after open and after 1,000 queries; SQLite blob reads vs a memory-mapped sidecar
    flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/store_scale.py rss /tmp/hm-1m.db

The baseline is this process with hashmem imported, the numba kernels loaded,
the embedding model loaded (the fingerprint check needs it) and BLAS initialized
(one small matrix product); the growth over it is what the store costs. Queries are held-out mixture vectors given as
embeddings, so the timing is the search, not the embedder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hashmem.evaluation import bench  # noqa: E402


def build(path: Path, n: int, seed: int) -> None:
    from hashmem.memory import Memory

    mix = bench.parametric_mixture(seed=seed)
    rng = np.random.default_rng(seed)
    t = time.time()
    with Memory(path, batch_size=4096) as mem:
        for s in range(0, n, 65536):
            m = min(65536, n - s)
            mem.add([f"passage {s + i} about topic {(s + i) % 997}" for i in range(m)],
                    embeddings=bench.draw(mix, m, rng), progress=False)
            print(f"{s + m:,} passages, {time.time() - t:.0f} s", flush=True)


def extend(path: Path, n: int, seed: int) -> None:
    """Grow a store built by ``build`` to n passages with direct inserts (same hasher, quantizer, format).

    Memory.add would refit ITQ on the way (minutes on 2 cores); the rows written here are
    exactly what it writes for given embeddings, minus fresh hints (each copies row 1's).
    """
    from hashmem.memory import Memory
    from hashmem.memory.backends.local import partition

    mix = bench.parametric_mixture(seed=seed)
    rng = np.random.default_rng(seed + 7)
    with Memory(path, create=False) as mem:
        hint = mem.storage.fetch([min(mem.ids())])[min(mem.ids())].hints
        have = len(mem)
        t = time.time()
        for s in range(have, n, 100_000):
            m = min(100_000, n - s)
            x = bench.draw(mix, m, rng)
            qv = mem.quantizer.encode(x)
            codes = mem.hasher.encode(mem.quantizer.decode(qv))
            with mem.storage.transaction() as c:
                mem.storage.insert(c, namespace="default", metadata=[{}] * m, codes=codes, qvecs=qv,
                                   hints=[hint] * m, gen=mem.hasher.generation)
            print(f"{s + m:,} passages, {time.time() - t:.0f} s", flush=True)
    t = time.time()
    with Memory(path, create=False) as mem:  # the first open fits and stores the IVF lists
        assert partition.stored(mem.storage, "default") is not None
    print(f"IVF lists fitted and stored by the first open, {time.time() - t:.0f} s", flush=True)


def rss_run(path: Path, n_queries: int, seed: int) -> dict:
    from hashmem.memory import Memory
    from hashmem.memory.backends.local.index import NamespaceIndex
    from hashmem.memory.embedding.embedder import Embedder
    from hashmem.memory.kernels import topk as kernels

    Embedder().encode(["warm the model"])  # the model is per process, not per passage
    # BLAS allocates its per-thread work buffers at the first matrix product (per process, tens of MB)
    np.ones((64, 384), np.float32) @ np.ones((384, 256), np.float32)
    warm = NamespaceIndex(4, 256)
    warm.add(np.arange(1, 5000), np.zeros((4999, 4), np.uint64))
    warm.search_batch(np.zeros((1, 4), np.uint64), 400)
    warm.build_ivf(nlist=16)
    warm.search_batch(np.zeros((1, 4), np.uint64), 400, nprobe=2)
    kernels.nearest_centroids(warm.cols, warm.centroids)
    del warm
    mix = bench.parametric_mixture(seed=seed)  # the queries are inputs, drawn before the baseline
    queries = bench.draw(mix, n_queries, np.random.default_rng(seed + 99))
    base = bench.rss_bytes()
    t = time.time()
    mem = Memory(path, create=False)
    open_s = time.time() - t
    n = len(mem)
    after_open = bench.rss_bytes()
    t = time.time()
    for q in queries:
        mem.search_embeddings(q[None, :], k=10)
    per_query = (time.time() - t) / n_queries
    after_queries = bench.rss_bytes()
    try:  # how much of the growth is freed heap that glibc keeps (returned by malloc_trim)
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        trimmed = bench.rss_bytes()
    except (OSError, AttributeError):
        trimmed = after_queries
    space = mem.index.spaces["default"]
    out = {
        "n": n,
        "bits": mem.config.bits,
        "open_seconds": open_s,
        "ivf": space.is_ivf,
        "nlist": space.nlist,
        "rss_after_open_per_passage": (after_open - base) / n,
        "rss_after_queries_per_passage": (after_queries - base) / n,
        "rss_after_queries_malloc_trim_per_passage": (trimmed - base) / n,
        "index_array_bytes_per_passage": space.nbytes() / n,
        "ms_per_query_end_to_end": 1e3 * per_query,
    }
    # where do the C int8 vectors come from: SQLite blobs (what the store does) vs a memory-mapped sidecar
    rng = np.random.default_rng(seed)
    live = space.live_ids()
    picks = [np.sort(rng.choice(live, 100, replace=False)) for _ in range(200)]
    t = time.time()
    for ids in picks:
        mem.storage.fetch_qvecs(ids.tolist(), mem.config.dim)
    out["sqlite_fetch_100_ms"] = 1e3 * (time.time() - t) / len(picks)
    side = Path(str(path) + ".qvec-sidecar")
    if not side.exists():
        mm = np.lib.format.open_memmap(side, mode="w+", dtype=np.int8, shape=(int(live.max()) + 1, mem.config.dim))
        for ids, vecs in mem.storage.iter_qvecs(mem.config.dim):
            mm[ids] = vecs
        mm.flush()
        del mm
    before_mm = bench.rss_bytes()
    mm = np.load(side, mmap_mode="r")
    t = time.time()
    for ids in picks:
        np.asarray(mm[ids])
    out["mmap_fetch_100_ms"] = 1e3 * (time.time() - t) / len(picks)
    for _ in range(800):  # the 1,000 queries' worth of candidate reads (200 done above)
        np.asarray(mm[np.sort(rng.choice(live, 100, replace=False))])
    out["mmap_rss_growth_per_passage_after_1000x100_reads"] = (bench.rss_bytes() - before_mm) / n
    same = all((mm[ids] == mem.storage.fetch_qvecs(ids.tolist(), mem.config.dim)).all() for ids in picks[:20])
    out["mmap_equals_sqlite"] = bool(same)
    mem.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("path", type=Path)
    b.add_argument("--n", type=int, default=1_000_000)
    b.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("extend")
    e.add_argument("path", type=Path)
    e.add_argument("--n", type=int, default=1_000_000)
    e.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("rss")
    r.add_argument("path", type=Path)
    r.add_argument("--queries", type=int, default=1000)
    r.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.cmd == "build":
        build(args.path, args.n, args.seed)
    elif args.cmd == "extend":
        extend(args.path, args.n, args.seed)
    else:
        print(json.dumps(rss_run(args.path, args.queries, args.seed), indent=1))


if __name__ == "__main__":
    main()
