"""The issue's evaluation grid: float32 / int8 / binary / binary+int8 on real labelled data.

Runs ``memory.eval.evaluate`` for {sign, itq} x {128, 256, 384} bits with 100
candidates on ../shared/data/cranfield, scifact-train and locomo (each query
searched only in its own conversation), and writes the tables into docs/eval.md
(between markers, so the prose around them stays) and all numbers into
docs/eval_grid.json. Corpus and query embeddings are computed once per dataset
and cached under .bench-cache/ (keyed by model and a hash of the texts).

``--sweep`` adds the investigation of the 0.99 x float32 target: binary+int8 at
more candidates, a larger asymmetric stage (search.ASYMMETRIC_FACTOR), and a
refit of the hasher on the whole corpus after ingesting.

Run (2 shared cores; takes the benchmark lock):

    HF_HUB_OFFLINE=1 flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/eval_grid.py [--sweep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.memory import search as search_mod  # noqa: E402
from hashmem.memory.embedding.embedder import BACKEND_ENV, DEFAULT_MODEL, Embedder  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / ".bench-cache"
DOC = ROOT / "docs" / "eval.md"
DATASETS = {"cranfield": None, "scifact-train": None, "locomo": "conv"}
TARGET = 0.99


def cached_embeddings(data: ev.Dataset, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(corpus [n_docs, dim], queries [n_queries, dim]) float32, from .bench-cache/ or computed."""
    h = hashlib.sha256()
    for t in data.doc_texts + ["\x00queries\x00"] + data.query_texts:
        h.update(t.encode("utf-8") + b"\x00")
    emb = Embedder(model)
    key = f"{data.name}-{model.replace('/', '_')}-{emb.backend}-{h.hexdigest()[:16]}.npz"
    path = CACHE / key
    if path.exists():
        with np.load(path) as z:
            return z["docs"], z["queries"]
    t = time.perf_counter()
    docs = emb.encode(data.doc_texts, progress=True)
    queries = emb.encode(data.query_texts, progress=True)
    print(f"  embedded {len(docs)} passages + {len(queries)} queries in {time.perf_counter() - t:.0f} s",
          file=sys.stderr)
    CACHE.mkdir(exist_ok=True)
    np.savez(path, docs=docs, queries=queries)
    return docs, queries


def overlap_at_10(runs: dict, method: str) -> float:
    """Mean share of the float32 top-10 that ``method`` also returns in its top 10."""
    ref, got = runs["float32"], runs[method]
    shares = [len(set(ref[q][:10]) & set(got[q][:10])) / max(len(ref[q][:10]), 1) for q in ref]
    return float(np.mean(shares))


def run_one(name: str, field: str | None, emb, **settings) -> dict:
    t = time.perf_counter()
    r = ev.evaluate(DATA / name, namespace_field=field, corpus_embeddings=emb[0], query_embeddings=emb[1],
                    return_runs=True, progress=False, **settings)
    runs = r.pop("runs")
    for m in ev.METHODS:
        r["methods"][m]["overlap@10"] = overlap_at_10(runs, m)
    r["seconds"] = time.perf_counter() - t
    return r


def grid(args) -> list[dict]:
    results = []
    for name in args.datasets:
        field = DATASETS[name]
        data = ev.load_beir(DATA / name, namespace_field=field)
        emb = cached_embeddings(data, args.model)
        for method in args.methods:
            for bits in args.bits:
                r = run_one(name, field, emb, bits=bits, method=method, candidates=args.candidates)
                results.append(r)
                m = r["methods"]
                print(f"{name:<14} {method:<4} {bits:>3}  float32 {m['float32']['ndcg@10']:.4f}  "
                      f"binary+int8 {m['binary+int8']['ndcg@10']:.4f} "
                      f"({m['binary+int8']['ndcg@10'] / m['float32']['ndcg@10']:.4f}x)  "
                      f"[{r['seconds']:.0f} s]", file=sys.stderr)
    return results


def sweep(args) -> list[dict]:
    """binary+int8 under other candidate depths, asymmetric factors, and a refit on the whole corpus.

    One store per (dataset, codes); every variant searches the same store, first with
    the hasher of the store's own schedule, then after ``Memory.refit()``.
    """
    from hashmem.memory import Memory

    out = []
    for name in [d for d in args.datasets if DATASETS[d] is None]:
        data = ev.load_beir(DATA / name)
        docs, queries = cached_embeddings(data, args.model)
        f32_run, _ = ev.run_exact(data, docs, queries)
        f32 = ev.score_run(f32_run, data.qrels)["ndcg@10"]
        for method in args.methods:
            for bits in args.sweep_bits:
                with tempfile.TemporaryDirectory() as tmp, \
                        Memory(Path(tmp) / "s.db", model=args.model, bits=bits, method=method) as mem:
                    ev.ingest(mem, data, docs, progress=False)
                    for refit in (False, True):
                        if refit:
                            mem.refit()
                        fitted = mem.hasher.fitted_on
                        for cand in args.sweep_candidates:
                            for factor in args.sweep_factors:
                                search_mod.ASYMMETRIC_FACTOR = factor
                                try:
                                    run, ms = ev.run_store(mem, data, queries, mode="binary+int8", candidates=cand)
                                finally:
                                    search_mod.ASYMMETRIC_FACTOR = 4
                                ndcg = ev.score_run(run, data.qrels)["ndcg@10"]
                                row = {"dataset": name, "method": method, "bits": bits, "candidates": cand,
                                       "asymmetric_factor": factor, "hamming_kept": cand * factor,
                                       "refit_all": refit, "fitted_on": fitted, "float32": f32,
                                       "ndcg@10": ndcg, "ratio": ndcg / f32,
                                       "overlap@10": overlap_at_10({"float32": f32_run, "b": run}, "b"),
                                       "ms_per_query": ms}
                                out.append(row)
                                print(f"{name:<14} {method:<4} {bits:>3} fit {fitted:>5} C={cand:<4} x{factor:<2} "
                                      f"{ndcg:.4f} ({row['ratio']:.4f}x) overlap {row['overlap@10']:.3f} "
                                      f"{ms:.1f} ms", file=sys.stderr)
    return out


# -- report ---------------------------------------------------------------------------------


def write_section(path: Path, tag: str, body: str) -> None:
    """Replace the text between ``<!-- tag:start -->`` and ``<!-- tag:end -->`` (append if absent)."""
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Evaluation\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def grid_markdown(results: list[dict], command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    lines.append("Summary: nDCG@10 of `binary+int8` (the store's search, 100 candidates) as a share "
                 f"of `float32` (target >= {TARGET} on cranfield and scifact-train).")
    lines.append("")
    names = list(dict.fromkeys(r["dataset"] for r in results))
    configs = list(dict.fromkeys((r["config"]["method"], r["config"]["bits"]) for r in results))
    lines.append("| dataset | " + " | ".join(f"{m} {b}" for m, b in configs) + " |")
    lines.append("|---|" + "---:|" * len(configs))
    for n in names:
        cells = []
        for m, b in configs:
            r = next((x for x in results if x["dataset"] == n and (x["config"]["method"], x["config"]["bits"]) == (m, b)), None)
            if r is None:
                cells.append("")
                continue
            ratio = r["methods"]["binary+int8"]["ndcg@10"] / r["methods"]["float32"]["ndcg@10"]
            cells.append(f"{ratio:.4f}" + (" ✓" if ratio >= TARGET else ""))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    for n in names:
        rs = [r for r in results if r["dataset"] == n]
        first = rs[0]
        f32 = first["methods"]["float32"]["ndcg@10"]
        scope = f"; each query searches only its `{first['config']['namespace_field']}`" if first["config"]["namespace_field"] else ""
        lines += ["", f"### {n}", "",
                  f"{first['n_docs']} passages, {first['n_queries']} judged queries{scope}; "
                  f"{first['config']['candidates']} candidates; hint budget {first['config']['hint_bytes']} B; "
                  f"embeddings: {first['config'].get('embed_backend', 'torch')} backend.", "",
                  "| codes | method | nDCG@10 | × float32 | R@10 | R@100 | MRR@10 | overlap@10 | ms/query | bytes/passage |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for m in ("float32", "int8"):  # independent of the codes: one row, median time over the runs
            x = first["methods"][m]
            ms = float(np.median([r["methods"][m]["ms_per_query"] for r in rs]))
            lines.append(_row("—", m, x, f32, ms))
        for r in rs:
            c = r["config"]
            for m in ("binary", "binary+int8"):
                x = r["methods"][m]
                lines.append(_row(f"{c['method']} {c['bits']} (fit on {c['hasher_fitted_on']})", m, x, f32,
                                  x["ms_per_query"]))
    lines += ["", "overlap@10 = share of the float32 top-10 that the method also ranks in its top 10. "
              "ms/query = search only (query embedding excluded), one query at a time, mean over the "
              "queries; float32 and int8 do not depend on the codes, so their time is the median over "
              "the six runs (int8 reads every vector from SQLite per query). The machine's 2 cores are "
              "shared, so times are noisy (int8 ranged "
              + ", ".join(f"{min(r['methods']['int8']['ms_per_query'] for r in results if r['dataset'] == n):.1f}–"
                          f"{max(r['methods']['int8']['ms_per_query'] for r in results if r['dataset'] == n):.1f} ms on {n}"
                          for n in names)
              + " for identical work); quality numbers are exact.",
              "",
              "bytes/passage: float32 = 4 × dim, int8 = dim, binary = bits / 8, binary+int8 = bits / 8 + dim "
              "+ mean hint bytes (metadata, ids and SQLite overhead not counted; see `hashmem stats`).",
              "recall@100 of binary+int8 counts the 100 passages it reranks (candidates = 100), so it is "
              "the recall of the Hamming + asymmetric stages."]
    return "\n".join(lines)


def _row(codes: str, m: str, x: dict, f32: float, ms: float) -> str:
    return (f"| {codes} | {m} | {x['ndcg@10']:.4f} | {x['ndcg@10'] / f32:.3f} | {x['recall@10']:.4f} | "
            f"{x['recall@100']:.4f} | {x['mrr@10']:.4f} | {x['overlap@10']:.3f} | {ms:.2f} | "
            f"{x['bytes_per_passage']:.0f} |")


def sweep_markdown(rows: list[dict], command: str) -> str:
    def cell(r):
        return f"{r['ratio']:.4f}" + (" ✓" if r["ratio"] >= TARGET else "")

    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (r["dataset"], r["method"], r["bits"], r["refit_all"])
        groups.setdefault(key, {"fitted_on": r["fitted_on"]})[(r["candidates"], r["asymmetric_factor"])] = r
    cands = sorted({r["candidates"] for r in rows})
    factors = sorted({r["asymmetric_factor"] for r in rows})
    lines = [f"Command: `{command}`", "",
             "nDCG@10 of binary+int8 as a share of float32. The Hamming stage keeps `candidates × factor`, "
             "the asymmetric stage (float query · ±1 codes) keeps `candidates`, int8 reranks them; factor 1 "
             "= no asymmetric stage. The store today: candidates 100, factor 4 (`search.ASYMMETRIC_FACTOR`), "
             "hasher fitted at 1,024 then 4,096 passages (`refit.FIRST_FIT`, `refit.REFIT_GROWTH`); `refit` = after "
             "`Memory.refit()` on the whole corpus. One store per row; ✓ = ≥ 0.99.", "",
             "At candidates = 100 (the target's budget), by asymmetric factor:", "",
             "| dataset | codes | fitted on | " + " | ".join(f"×{f}" for f in factors) + " | ms/query at ×4 |",
             "|---|---|---:|" + "---:|" * (len(factors) + 1)]
    for (name, method, bits, _refit), g in groups.items():
        if (100, 4) not in g:
            continue
        lines.append(f"| {name} | {method} {bits} | {g['fitted_on']} | "
                     + " | ".join(cell(g[(100, f)]) if (100, f) in g else "" for f in factors)
                     + f" | {g[(100, 4)]['ms_per_query']:.2f} |")
    lines += ["", "At factor 4 (today's), by candidates (int8 vectors read and reranked per query):", "",
              "| dataset | codes | fitted on | " + " | ".join(f"C={c}" for c in cands) + " | ms/query at C=" + str(cands[-1]) + " |",
              "|---|---|---:|" + "---:|" * (len(cands) + 1)]
    for (name, method, bits, _refit), g in groups.items():
        lines.append(f"| {name} | {method} {bits} | {g['fitted_on']} | "
                     + " | ".join(cell(g[(c, 4)]) if (c, 4) in g else "" for c in cands)
                     + (f" | {g[(cands[-1], 4)]['ms_per_query']:.2f} |" if (cands[-1], 4) in g else " | |"))
    lines += ["", "Every combination (with overlap@10 and ms/query) is in `docs/eval_grid.json` under `sweep`."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--methods", nargs="+", default=["sign", "itq"])
    p.add_argument("--bits", nargs="+", type=int, default=[128, 256, 384])
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--backend", choices=["auto", "onnx-int8", "torch"], default=None,
                   help=f"embedding backend (sets ${BACKEND_ENV}; default: the library's, auto)")
    p.add_argument("--sweep", action="store_true", help="also run the candidates / factor / refit sweep")
    p.add_argument("--sweep-only", action="store_true", help="run only the sweep")
    p.add_argument("--sweep-bits", nargs="+", type=int, default=[128, 256, 384])
    p.add_argument("--sweep-candidates", nargs="+", type=int, default=[50, 100, 200, 400])
    p.add_argument("--sweep-factors", nargs="+", type=int, default=[1, 4, 8, 16])
    p.add_argument("--section", default="eval-grid", help="marker name of the grid's docs/eval.md section")
    p.add_argument("--report-only", action="store_true", help="only rewrite docs/eval.md from the JSON file")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "eval_grid.json")
    args = p.parse_args()
    if args.backend:
        os.environ[BACKEND_ENV] = args.backend  # every Embedder of this run, the stores' included
    command = "HF_HUB_OFFLINE=1 flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/eval_grid.py " + " ".join(sys.argv[1:])
    command = command.strip()
    saved = json.loads(args.json.read_text()) if args.json.exists() else {}
    if args.report_only:  # rewrite the docs from the saved numbers
        if "grid" in saved:
            write_section(DOC, args.section, grid_markdown(saved["grid"]["results"], saved["grid"]["command"]))
        if "sweep" in saved:
            write_section(DOC, "eval-sweep", sweep_markdown(saved["sweep"]["rows"], saved["sweep"]["command"]))
        return
    if not args.sweep_only:
        results = grid(args)
        saved["grid"] = {"command": command, "results": results}
        write_section(DOC, args.section, grid_markdown(results, command))
    if args.sweep or args.sweep_only:
        rows = sweep(args)
        saved["sweep"] = {"command": command, "rows": rows}
        write_section(DOC, "eval-sweep", sweep_markdown(rows, command))
    args.json.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"wrote {DOC} and {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
