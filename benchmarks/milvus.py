"""Issue 12, item 5: the same 1M-code workload on the local index and on a Milvus standalone server.

One run, side by side on this machine (2 shared cores: read the ratios, not the absolute times):

- data: 256-bit sign codes of draws from a 384-d Gaussian mixture (``bench.parametric_mixture``),
  each row with its int8 vector (384 B, base64 in a VARCHAR: server 2.3.5 has no INT8_VECTOR),
  ~47 B of hints (base64) and a small JSON metadata, in one ``namespace`` (a partition key);
  64 held-out queries from the same mixture.
- ingest rows/s of precomputed rows: Milvus ``insert`` (encoding included, bounded consistency)
  and ``flush``; locally, ``HammingIndex.add`` (the in-RAM index only: the SQLite rows of the
  local store are not part of this raw workload).
- search ms/query, top-C Hamming, single queries and batches: local brute force (numba kernel)
  vs ``BIN_FLAT``; local IVF (binary centroids, default nprobe) vs ``BIN_IVF_FLAT`` (nlist,
  nprobe given); plus a batch returning the int8 vectors (``output_fields=["vec8"]``) and a few
  single queries at strong consistency.
- recall of each against an exact numpy scan (tie-aware: Hamming distances tie constantly).
- RSS: the Milvus server's process tree (idle, after ingest, loaded) and this process's growth
  for the local index; Milvus's bytes per row on disk (its data directory) and in RAM.
- a load run: a writer thread inserts batches of 100 rows for 30 s, the server is restarted
  (SIGTERM, SIGKILL after 15 s, start again on the same ports and data), the writer goes on
  for 30 s more; then every acknowledged id is looked up at strong consistency.
- with ``--e2e`` (instead of the above): nDCG@10 on SciFact (train queries) through
  ``Memory("milvus://...")`` (BIN_FLAT, and BIN_IVF_FLAT) and through a local store at the
  same settings and the same embeddings (``memory.eval.evaluate``).

    .venv/bin/python benchmarks/milvus.py --n 1000000     # ~15 min here; --n 100000 for a quick run
    .venv/bin/python benchmarks/milvus.py --e2e           # ~10 min (embeds SciFact once)

Writes ``benchmarks/results/milvus_1m.json`` (``--e2e``: ``milvus_scifact.json``; ``--out``).
The server is the tests' launcher (``tests/milvus_server.py``: loopback only, free ports);
it is stopped at the end.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# this file is named milvus.py: drop its own folder from the path so `import milvus` finds the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from hashmem.evaluation import bench  # noqa: E402

NAMESPACE = "default"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def exact_topk(codes_words: np.ndarray, query_words: np.ndarray, k: int) -> np.ndarray:
    """The exact k smallest Hamming distances int [q, k] by a numpy scan (reference for recall)."""
    out = np.empty((len(query_words), k), dtype=np.int64)
    for i, q in enumerate(query_words):
        d = np.bitwise_count(codes_words ^ q).sum(axis=1, dtype=np.int64)  # [n]
        out[i] = np.sort(np.partition(d, k - 1)[:k])
    return out


def rows_of(rng: np.random.Generator, x: np.ndarray, mean: np.ndarray, proj: np.ndarray):
    """Codes uint8 [n, bits/8], int8 vectors [n, dim] and hint blobs of the vectors x."""
    codes = np.packbits((x - mean) @ proj > 0, axis=-1)
    scale = 127.0 / np.abs(x).max(axis=1, keepdims=True)
    vec8 = np.clip(np.rint(x * scale), -127, 127).astype(np.int8)
    lengths = rng.integers(40, 55, size=len(x))  # ~47 B of hints per passage
    pool = rng.integers(0, 256, size=int(lengths.sum()), dtype=np.uint8).tobytes()
    ends = np.cumsum(lengths)
    hints = [pool[e - n : e] for e, n in zip(ends, lengths, strict=True)]
    return codes, vec8, hints


def milvus_search(client, name, queries, k, params, *, consistency="Bounded", output_fields=None):
    res = client.search(name, data=[q.tobytes() for q in queries], limit=k, anns_field="code",
                        search_params={"metric_type": "HAMMING", "params": params},
                        output_fields=output_fields or [], consistency_level=consistency)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    dist = np.full((len(queries), k), 1 << 30, dtype=np.int64)
    for i, hits in enumerate(res):
        for j, h in enumerate(hits):
            ids[i, j], dist[i, j] = h["id"], round(h["distance"])
    return ids, dist


def paired(fns: dict, queries: np.ndarray, batch: int, rounds: int) -> dict:
    """ms/query of each fn(query_batch), rounds interleaved (A, B, A, B, ...): the fastest round of each.

    On a shared machine the load changes within seconds; interleaving exposes both sides to the
    same load, so their ratio is fairer than that of two separate timings."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for label, fn in fns.items():
            t = time.perf_counter()
            for s in range(0, len(queries), batch):
                fn(queries[s : s + batch])
            best[label] = min(best[label], (time.perf_counter() - t) / len(queries))
    return {label: round(1000 * v, 3) for label, v in best.items()}


def wait_index(client, name, field="code", timeout=3600.0) -> float:
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        info = client.describe_index(name, index_name=field)
        if info.get("state") == "Finished" or (info.get("pending_index_rows") == 0
                                                and info.get("indexed_rows", 0) == info.get("total_rows", -1)):
            return time.perf_counter() - t
        time.sleep(1)
    raise TimeoutError(f"index on {name}.{field} not built in {timeout} s")


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def segments_on_disk(data: Path) -> dict:
    """Sealed segments of the server's only collection: count and binlog bytes (insert_log/coll/part/seg)."""
    sizes = [du(seg) for seg in data.glob("insert_log/*/*/*") if seg.is_dir()]
    return {"count": len(sizes), "binlog_bytes_mean": round(float(np.mean(sizes))) if sizes else 0,
            "binlog_bytes_total": int(sum(sizes))}


def load_with_restart(server, *, seconds: float, batch: int, bits: int, seed: int) -> dict:
    """Insert batches from a writer thread for ``seconds`` before and after a server restart; then
    check that every acknowledged row is there (strong consistency) and count the lost ones."""
    import threading

    from pymilvus import DataType, MilvusClient

    name = "bench_restart"
    client = MilvusClient(uri=server.http_uri, timeout=60)
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("code", DataType.BINARY_VECTOR, dim=bits)
    index = client.prepare_index_params()
    index.add_index(field_name="code", index_name="code", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Bounded")
    rng = np.random.default_rng(seed)
    acked: list[np.ndarray] = []
    failures: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        wclient = MilvusClient(uri=server.http_uri, timeout=10)
        next_id = 0
        while not stop.is_set():
            ids = np.arange(next_id, next_id + batch, dtype=np.int64)
            next_id += batch
            codes = rng.integers(0, 256, size=(batch, bits // 8), dtype=np.uint8)
            try:
                got = wclient.insert(name, [{"id": int(i), "code": c.tobytes()} for i, c in zip(ids, codes, strict=True)])
                if got["insert_count"] == batch:
                    acked.append(ids)
                else:
                    failures.append(f"partial insert {got['insert_count']}/{batch}")
            except Exception as exc:  # the server is away: this batch is not acknowledged
                failures.append(type(exc).__name__)
                time.sleep(0.5)
        wclient.close()

    # the writer's failed calls while the server is away are expected: keep pymilvus's retry log quiet
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(seconds / 2)
    acked_before = sum(len(a) for a in acked)
    client.close()
    t_restart = time.perf_counter()
    server.restart()
    restart_s = time.perf_counter() - t_restart
    client = MilvusClient(uri=server.http_uri, timeout=60)
    time.sleep(seconds / 2)  # as long again after the restart
    stop.set()
    thread.join()
    want = np.concatenate(acked) if acked else np.empty(0, dtype=np.int64)
    client.load_collection(name)
    found: set[int] = set()
    top = int(want.max()) + 1 if len(want) else 0
    for lo in range(0, top, 10_000):
        rows = client.query(name, filter=f"id >= {lo} and id < {lo + 10_000}", output_fields=["id"],
                            consistency_level="Strong", limit=16_384)
        found.update(int(r["id"]) for r in rows)
    lost = int(np.sum([i not in found for i in want.tolist()]))
    client.drop_collection(name)
    client.close()
    return {"seconds": seconds, "batch": batch, "acknowledged_rows": int(len(want)),
            "acknowledged_before_restart": acked_before, "restart_s": round(restart_s, 1),
            "failed_batches": len(failures), "failure_kinds": sorted(set(failures)),
            "rows_found": len(found), "acknowledged_rows_lost": lost}


def run(args) -> dict:
    from milvus_server import MilvusServer, tree_rss
    from pymilvus import DataType, MilvusClient

    from hashmem.memory.backends.local.index import HammingIndex, to_words

    n, k, bits = args.n, args.k, args.bits
    mix = bench.parametric_mixture(seed=args.seed)
    mean, proj = bench.sign_hasher(mix, bits, seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    queries = np.packbits((bench.draw(mix, args.queries, rng) - mean) @ proj > 0, axis=-1)
    qwords = to_words(queries)
    result: dict = {
        "args": {k_: (str(v) if isinstance(v, Path) else v) for k_, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    data_dir = Path(args.data_dir)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    server = MilvusServer(data_dir)
    log("starting Milvus")
    t = time.perf_counter()
    server.start()
    result["milvus_start_s"] = round(time.perf_counter() - t, 1)
    time.sleep(5)
    rss_idle = tree_rss(server.pid)
    client = MilvusClient(uri=server.http_uri, timeout=600)
    import pymilvus

    result["versions"] = {"server": client.get_server_version(), "pymilvus": pymilvus.__version__}
    try:
        name = "bench"
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("namespace", DataType.VARCHAR, max_length=64, is_partition_key=True)
        schema.add_field("code", DataType.BINARY_VECTOR, dim=bits)
        schema.add_field("vec8", DataType.VARCHAR, max_length=4 * ((mix.chol.shape[0] + 2) // 3))
        schema.add_field("hints", DataType.VARCHAR, max_length=512)
        schema.add_field("meta", DataType.JSON)
        client.create_collection(name, schema=schema, consistency_level="Bounded")

        local = HammingIndex(bits, ivf_min_rows=None)  # brute force: the exact scan BIN_FLAT matches
        codes_all = np.empty((n, bits // 8), dtype=np.uint8)
        t_milvus = t_local = 0.0
        log(f"ingest {n:,} rows")
        for s in range(0, n, args.insert_batch):
            m = min(args.insert_batch, n - s)
            codes, vec8, hints = rows_of(rng, bench.draw(mix, m, rng), mean, proj)
            codes_all[s : s + m] = codes
            ids = np.arange(s, s + m, dtype=np.int64)
            t0 = time.perf_counter()
            rows = [{"id": int(i), "namespace": NAMESPACE, "code": c.tobytes(),
                     "vec8": base64.b64encode(v.tobytes()).decode("ascii"),
                     "hints": base64.b64encode(h).decode("ascii"), "meta": {"n": int(i)}}
                    for i, c, v, h in zip(ids, codes, vec8, hints, strict=True)]
            got = client.insert(name, rows)["insert_count"]
            t_milvus += time.perf_counter() - t0
            if got != m:
                raise RuntimeError(f"insert acknowledged {got} of {m} rows")
            t0 = time.perf_counter()
            local.add(NAMESPACE, ids, codes)
            t_local += time.perf_counter() - t0
            if (s // args.insert_batch) % 20 == 0:
                log(f"  {s + m:,} rows, milvus {(s + m) / t_milvus:,.0f} rows/s")
        t0 = time.perf_counter()
        client.flush(name)
        t_flush = time.perf_counter() - t0
        time.sleep(5)
        rss_ingested = tree_rss(server.pid)
        disk_ingested = du(data_dir / "data")
        segments_ingested = segments_on_disk(data_dir / "data")
        result["ingest"] = {
            "rows": n,
            "milvus_insert_rows_per_s": round(n / t_milvus),
            "milvus_flush_s": round(t_flush, 1),
            "milvus_rows_per_s_incl_flush": round(n / (t_milvus + t_flush)),
            "local_index_add_rows_per_s": round(n / t_local),
            "note": "Milvus: row dicts built and base64-encoded in the timed loop, insert batches of "
                    f"{args.insert_batch}; local: HammingIndex.add only (RAM index, no SQLite)",
        }
        log(f"ingest: {result['ingest']}")

        # -- exact reference ---------------------------------------------------------------
        t0 = time.perf_counter()
        ref = exact_topk(to_words(codes_all), qwords, k)
        result["exact_numpy_scan_ms_per_query"] = round(1000 * (time.perf_counter() - t0) / len(queries), 2)

        # -- local: brute force and IVF ----------------------------------------------------
        space = local.spaces[NAMESPACE]
        local.refresh()
        for warm in (qwords[:1], qwords):  # compile the numba kernels (one query, a batch) before timing
            space.search_batch(warm, k)
        result["local_index_bytes"] = space.nbytes()
        single = bench.time_queries(lambda q: space.search_batch(to_words(q), k), queries, 1,
                                    min_seconds=args.min_seconds)
        batch = bench.time_queries(lambda q: space.search_batch(to_words(q), k), queries, args.batch,
                                   min_seconds=args.min_seconds)
        ids, dist = space.search_batch(qwords, k)
        local_flat = {"single_ms": round(1000 * single, 3), "batch_ms": round(1000 * batch, 3),
                      "recall": bench.recall_tie_aware(ids, dist.astype(np.int64), ref)}
        log(f"local brute force: {local_flat}")
        rss0 = bench.rss_bytes()
        local_ivf_index = HammingIndex(bits)  # IVF from IVF_MIN_ROWS rows (binary centroids)
        local_ivf_index.add(NAMESPACE, np.arange(n, dtype=np.int64), codes_all)
        t0 = time.perf_counter()
        local_ivf_index.refresh()
        ivf_build = time.perf_counter() - t0
        ivf_space = local_ivf_index.spaces[NAMESPACE]
        for warm in (qwords[:1], qwords):  # compile before timing
            ivf_space.search_batch(warm, k)
        single = bench.time_queries(lambda q: ivf_space.search_batch(to_words(q), k), queries, 1,
                                    min_seconds=args.min_seconds)
        batch = bench.time_queries(lambda q: ivf_space.search_batch(to_words(q), k), queries, args.batch,
                                   min_seconds=args.min_seconds)
        ids, dist = ivf_space.search_batch(qwords, k)
        local_ivf = {"is_ivf": ivf_space.is_ivf, "nlist": ivf_space.nlist if ivf_space.is_ivf else None,
                     "build_s": round(ivf_build, 1), "single_ms": round(1000 * single, 3),
                     "batch_ms": round(1000 * batch, 3),
                     "recall": bench.recall_tie_aware(ids, dist.astype(np.int64), ref),
                     "index_bytes": ivf_space.nbytes(), "rss_growth_bytes": bench.rss_bytes() - rss0}
        log(f"local IVF: {local_ivf}")
        def local_flat_fn(q):
            return space.search_batch(to_words(q), k)

        def local_ivf_fn(q):
            return ivf_space.search_batch(to_words(q), k)
        result["local"] = {"brute_force": local_flat, "ivf": local_ivf}

        # -- Milvus: BIN_FLAT ---------------------------------------------------------------
        def measure(params: dict, label: str) -> dict:
            for _ in range(2):  # warm up: the first searches after a load pay for segment loading
                milvus_search(client, name, queries, k, params)
            single = bench.time_queries(lambda q: milvus_search(client, name, q, k, params), queries, 1,
                                        min_seconds=args.min_seconds)
            batch = bench.time_queries(lambda q: milvus_search(client, name, q, k, params), queries, args.batch,
                                       min_seconds=args.min_seconds)
            ids, dist = milvus_search(client, name, queries, k, params)
            out = {"params": params, "single_ms": round(1000 * single, 3), "batch_ms": round(1000 * batch, 3),
                   "recall": bench.recall_tie_aware(ids, dist, ref)}
            log(f"milvus {label}: {out}")
            return out

        index = client.prepare_index_params()
        index.add_index(field_name="code", index_name="code", index_type="BIN_FLAT", metric_type="HAMMING")
        t0 = time.perf_counter()
        client.create_index(name, index)
        build = wait_index(client, name)
        client.load_collection(name)
        load_s = time.perf_counter() - t0
        time.sleep(5)
        rss_loaded = tree_rss(server.pid)
        bin_flat_files = du(data_dir / "data" / "index_files")
        flat = measure({}, "BIN_FLAT")
        flat["index_files_bytes"] = bin_flat_files
        fns = {"local_brute_force": local_flat_fn, "milvus_bin_flat": lambda q: milvus_search(client, name, q, k, {})}
        flat["paired_batch_ms"] = paired(fns, queries, args.batch, args.rounds)
        flat["paired_single_ms"] = paired(fns, queries, 1, args.rounds)
        log(f"paired BIN_FLAT vs local brute force: {flat['paired_batch_ms']} {flat['paired_single_ms']}")
        flat["index_and_load_s"] = round(load_s, 1)
        flat["index_build_s"] = round(build, 1)
        batch_vec = bench.time_queries(
            lambda q: milvus_search(client, name, q, k, {}, output_fields=["vec8"]), queries, args.batch,
            min_seconds=args.min_seconds)
        flat["batch_with_vec8_ms"] = round(1000 * batch_vec, 3)
        strong = bench.time_queries(lambda q: milvus_search(client, name, q, k, {}, consistency="Strong"),
                                    queries[: args.strong_queries], 1, min_seconds=0.0)
        flat["single_strong_ms"] = round(1000 * strong, 1)
        ns_filter = bench.time_queries(
            lambda q: client.search(name, data=[x.tobytes() for x in q], limit=k, anns_field="code",
                                    filter=f'namespace == "{NAMESPACE}"',
                                    search_params={"metric_type": "HAMMING"}, consistency_level="Bounded"),
            queries, args.batch, min_seconds=args.min_seconds)
        flat["batch_namespace_filter_ms"] = round(1000 * ns_filter, 3)
        with_meta = bench.time_queries(
            lambda q: client.search(name, data=[x.tobytes() for x in q], limit=k, anns_field="code",
                                    filter="meta[\"n\"] >= 0", search_params={"metric_type": "HAMMING"},
                                    consistency_level="Bounded"),
            queries[:8], 8, min_seconds=0.0)
        flat["batch_json_filter_ms"] = round(1000 * with_meta, 3)
        log(f"milvus BIN_FLAT extras: {flat}")

        # -- Milvus: BIN_IVF_FLAT -----------------------------------------------------------
        client.release_collection(name)
        client.drop_index(name, "code")
        index = client.prepare_index_params()
        index.add_index(field_name="code", index_name="code", index_type="BIN_IVF_FLAT", metric_type="HAMMING",
                        params={"nlist": args.nlist})
        t0 = time.perf_counter()
        client.create_index(name, index)
        build = wait_index(client, name)
        index_files_bytes = du(data_dir / "data" / "index_files")
        # a restart before loading, so the RSS is the IVF collection's alone (not what BIN_FLAT left)
        client.close()
        t1 = time.perf_counter()
        server.restart()
        restart_s = time.perf_counter() - t1
        client = MilvusClient(uri=server.http_uri, timeout=600)
        t1 = time.perf_counter()
        client.load_collection(name)
        ivf = {"nlist": args.nlist, "index_build_s": round(build, 1), "restart_s": round(restart_s, 1),
               "load_after_restart_s": round(time.perf_counter() - t1, 1),
               "index_files_bytes": index_files_bytes, "nprobe": {}}
        time.sleep(5)
        rss_loaded_ivf = tree_rss(server.pid)
        ids, _ = milvus_search(client, name, queries[:1], k, {"nprobe": 16})
        ivf["rows_after_restart_searchable"] = bool((ids >= 0).all())
        for nprobe in args.nprobe:
            ivf["nprobe"][str(nprobe)] = measure({"nprobe": nprobe}, f"BIN_IVF_FLAT nprobe={nprobe}")
        best_nprobe = max(ivf["nprobe"], key=lambda p: ivf["nprobe"][p]["recall"])
        fns = {"local_ivf": local_ivf_fn,
               "milvus_bin_ivf_flat": lambda q: milvus_search(client, name, q, k, {"nprobe": int(best_nprobe)})}
        ivf["paired_nprobe"] = int(best_nprobe)
        ivf["paired_batch_ms"] = paired(fns, queries, args.batch, args.rounds)
        ivf["paired_single_ms"] = paired(fns, queries, 1, args.rounds)
        log(f"paired BIN_IVF_FLAT (nprobe {best_nprobe}) vs local IVF: {ivf['paired_batch_ms']} {ivf['paired_single_ms']}")
        local_ivf_index = ivf_space = None
        disk_indexed = du(data_dir / "data")
        segments = None
        try:
            segments = [{"id": s.id, "rows": s.num_rows} if hasattr(s, "num_rows") else str(s)
                        for s in client.list_loaded_segments(name)]
        except Exception as exc:  # not every 2.3 server answers the 2.6 client's segment listing
            segments = f"unavailable: {type(exc).__name__}"
        result["milvus"] = {
            "bin_flat": flat, "bin_ivf_flat": ivf,
            "rss_bytes": {"idle": rss_idle, "ingested": rss_ingested, "loaded_bin_flat": rss_loaded,
                          "loaded_bin_ivf_flat": rss_loaded_ivf},
            "rss_bytes_per_row_loaded_bin_flat": round((rss_loaded - rss_idle) / n, 1),
            "rss_bytes_per_row_loaded_bin_ivf_flat_after_restart": round((rss_loaded_ivf - rss_idle) / n, 1),
            "disk_bytes": {"ingested": disk_ingested, "with_index": disk_indexed},
            "disk_bytes_per_row_ingested": round(disk_ingested / n, 1),
            "segments_after_flush": segments_ingested,
            "binlog_bytes_per_row": round(segments_ingested["binlog_bytes_total"] / n, 1),
            "loaded_segments": segments,
        }
        pf_b, pf_s, pi_b, pi_s = (flat["paired_batch_ms"], flat["paired_single_ms"], ivf["paired_batch_ms"],
                                  ivf["paired_single_ms"])
        result["ratios_milvus_over_local"] = {
            "note": "from the interleaved (paired) timings",
            "bin_flat_vs_brute_force_batch": round(pf_b["milvus_bin_flat"] / pf_b["local_brute_force"], 2),
            "bin_flat_vs_brute_force_single": round(pf_s["milvus_bin_flat"] / pf_s["local_brute_force"], 2),
            "bin_ivf_flat_vs_local_ivf_batch": round(pi_b["milvus_bin_ivf_flat"] / pi_b["local_ivf"], 2),
            "bin_ivf_flat_vs_local_ivf_single": round(pi_s["milvus_bin_ivf_flat"] / pi_s["local_ivf"], 2),
        }
        log(f"ratios: {result['ratios_milvus_over_local']}")
        client.drop_collection(name)
        if args.restart_seconds > 0:
            client.close()
            log(f"load run with a restart in the middle ({args.restart_seconds:.0f} s)")
            result["load_with_restart"] = load_with_restart(server, seconds=args.restart_seconds, batch=100,
                                                            bits=bits, seed=args.seed)
            log(f"load run: {result['load_with_restart']}")
            client = MilvusClient(uri=server.http_uri, timeout=600)
    finally:
        client.close()
        server.stop()
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return result


def e2e(args) -> dict:
    """nDCG@10 on a BEIR set through a local store and through Milvus (BIN_FLAT, BIN_IVF_FLAT), same embeddings."""
    import tempfile

    from milvus_server import MilvusServer

    from hashmem.evaluation.retrieval import evaluate, load_beir
    from hashmem.memory.embedding.embedder import Embedder

    data = load_beir(args.dataset)
    log(f"embedding {len(data.doc_texts):,} passages and {len(data.query_texts):,} queries")
    emb = Embedder()
    t = time.perf_counter()
    docs, queries = emb.encode(data.doc_texts), emb.encode(data.query_texts)
    result: dict = {
        "dataset": str(args.dataset), "n_docs": len(data.doc_ids), "n_queries": len(data.query_ids),
        "embed_s": round(time.perf_counter() - t, 1),
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": {},
    }
    data_dir = Path(args.data_dir)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    with tempfile.TemporaryDirectory(prefix="hashmem-milvus-e2e-") as tmp, MilvusServer(data_dir) as server:
        stores = {
            "local": str(Path(tmp) / "local.db"),
            "milvus_bin_flat": f"{server.uri}/scifact_flat",
            "milvus_bin_ivf_flat": f"{server.uri}/scifact_ivf?index=BIN_IVF_FLAT&nlist={args.e2e_nlist}"
                                   f"&nprobe={args.e2e_nprobe}",
        }
        for label, where in stores.items():
            t = time.perf_counter()
            out = evaluate(args.dataset, store_path=where, corpus_embeddings=docs, query_embeddings=queries,
                           methods=["binary+int8"])
            m = out["methods"]["binary+int8"]
            result["runs"][label] = {
                "store": where, "ndcg@10": m["ndcg@10"], "recall@10": m["recall@10"],
                "recall@100": m["recall@100"], "ms_per_query": m["ms_per_query"],
                "hasher_fitted_on": out["config"]["hasher_fitted_on"], "candidates": out["config"]["candidates"],
                "wall_s": round(time.perf_counter() - t, 1),
            }
            log(f"{label}: {result['runs'][label]}")
    runs = result["runs"]
    result["ndcg@10_difference_milvus_bin_flat_minus_local"] = round(
        runs["milvus_bin_flat"]["ndcg@10"] - runs["local"]["ndcg@10"], 5)
    result["ndcg@10_difference_milvus_bin_ivf_flat_minus_local"] = round(
        runs["milvus_bin_ivf_flat"]["ndcg@10"] - runs["local"]["ndcg@10"], 5)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="rows (codes) in the collection and the index")
    ap.add_argument("--k", type=int, default=100, help="top-C candidates per query")
    ap.add_argument("--bits", type=int, default=256)
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64, help="queries per batched call")
    ap.add_argument("--insert-batch", type=int, default=5000)
    ap.add_argument("--nlist", type=int, default=1024, help="BIN_IVF_FLAT lists")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16, 64, 128], help="BIN_IVF_FLAT lists probed")
    ap.add_argument("--strong-queries", type=int, default=8, help="single queries timed at strong consistency")
    ap.add_argument("--min-seconds", type=float, default=2.0, help="timing rounds last at least this long")
    ap.add_argument("--restart-seconds", type=float, default=60.0,
                    help="load run with a server restart halfway (0: skip)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the paired timings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default="/tmp/hashmem-milvus-bench", help="the server's data (wiped first)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "milvus_1m.json")
    ap.add_argument("--e2e", action="store_true",
                    help="instead: nDCG@10 on --dataset through a local store and through Milvus (Memory)")
    ap.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "scifact-train")
    ap.add_argument("--e2e-nlist", type=int, default=64, help="BIN_IVF_FLAT lists of the e2e IVF store")
    ap.add_argument("--e2e-nprobe", type=int, default=16, help="BIN_IVF_FLAT lists probed in the e2e IVF store")
    args = ap.parse_args()
    if args.e2e and args.out == ap.get_default("out"):
        args.out = ROOT / "benchmarks" / "results" / "milvus_scifact.json"
    result = e2e(args) if args.e2e else run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
