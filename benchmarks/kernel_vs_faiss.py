"""Item 1 of issue 4: Hamming top-k over N random codes, ours (numba / numpy) vs faiss IndexBinaryFlat.

Each library is timed in its own subprocess (faiss's OpenMP threads and numba's
threads slow each other down when they share a process), alternating, and the
minimum over repeats and rounds is reported (the machine is shared: the minimum is
the least disturbed run). Same codes, same queries, same k.

    flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/kernel_vs_faiss.py --n 1000000 --k 400
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def make(n: int, bits: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(64, bits // 8), dtype=np.uint8)
    return codes, queries


def time_lib(lib: str, n: int, bits: int, k: int, repeats: int) -> dict:
    codes, queries = make(n, bits)
    if lib == "faiss":
        import faiss

        faiss.omp_set_num_threads(2)
        index = faiss.IndexBinaryFlat(bits)
        index.add(codes)

        def single(q):
            return index.search(q, k)

        batch = single
    else:
        sys.path.insert(0, ".")
        from hashmem.memory.kernels import topk as kernels

        cols = np.ascontiguousarray(kernels.to_words(codes).T)
        ids = np.arange(n, dtype=np.int64)

        def single(q):
            return kernels.hamming_topk(kernels.to_words(q), cols, ids, k, bits=bits, backend=lib)

        batch = single
    single(queries[:1])  # warm up / compile
    out = {}
    singles = []
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(16):
            single(queries[i : i + 1])
        singles.append((time.perf_counter() - t) / 16)
    out["single_ms"] = 1e3 * min(singles)
    if lib != "numpy":
        batches = []
        for _ in range(repeats):
            t = time.perf_counter()
            batch(queries)
            batches.append((time.perf_counter() - t) / len(queries))
        out["batch64_ms"] = 1e3 * min(batches)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=400)
    ap.add_argument("--bits", type=int, nargs="*", default=[64, 128, 256, 384])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--numpy", action="store_true", help="also time the numpy fallback (slow)")
    ap.add_argument("--child", nargs=3, metavar=("LIB", "BITS", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        lib, bits, n = args.child
        print(json.dumps(time_lib(lib, int(n), int(bits), args.k, args.repeats)))
        return
    libs = ["numba", "faiss"] + (["numpy"] if args.numpy else [])
    rows = []
    for bits in args.bits:
        res: dict[str, dict] = {}
        for _ in range(args.rounds):  # alternate the libraries so both see the same disturbances
            for lib in libs:
                cmd = [sys.executable, __file__, "--k", str(args.k), "--repeats", str(args.repeats),
                       "--child", lib, str(bits), str(args.n)]
                r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                res[lib] = {key: min(v, res.get(lib, {}).get(key, v)) for key, v in r.items()}
        row = {"bits": bits, **{f"{lib}_{key}": v for lib, r in res.items() for key, v in r.items()}}
        row["ratio_single"] = row["numba_single_ms"] / row["faiss_single_ms"]
        row["ratio_batch64"] = row["numba_batch64_ms"] / row["faiss_batch64_ms"]
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    print("\n| bits | ours single ms | faiss single ms | ratio | ours batch-64 ms/q | faiss batch-64 ms/q | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['bits']} | {r['numba_single_ms']:.2f} | {r['faiss_single_ms']:.2f} | {r['ratio_single']:.2f} "
              f"| {r['numba_batch64_ms']:.3f} | {r['faiss_batch64_ms']:.3f} | {r['ratio_batch64']:.2f} |")


if __name__ == "__main__":
    main()
