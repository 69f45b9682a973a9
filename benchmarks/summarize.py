"""Issue 20 item 3: the extractive summary (top sentences) against the model's (written, then checked).

Stores (from cached embeddings, ``eval_grid.cached_embeddings``): scifact-train as a ``text``
and as a ``hints`` store (one passage per abstract, title + text), and LoCoMo as a ``text``
store (one turn per passage, its session date in its title, one namespace per conversation).
Queries: ``--queries`` of each spread evenly over its queries.jsonl (LoCoMo: its questions,
searched within their conversation). Per query: the top ``-k`` hits, then both summaries
(``LlamaDecoder.summarize`` with ``method="extractive"`` and ``"model"``), one after the
other in alternating order, so that both see the same load. Figures per method
(``evaluation.summary``): key-term coverage, invented-term rate (invented numbers and names
over all numbers and names of the summaries; also of the model's unchecked drafts), cosine
of the summary to the hits' centroid, words, sentences, p50 and p90 ms, and how often the
model's summary fell back to the extractive one. The machine's load average is recorded at
the start and the end.

Run:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/summarize.py [--queries 30] [-k 5] [--model GGUF]
        [--threads 1] [--out benchmarks/results/summarize.json]
"""

from __future__ import annotations

import argparse
import json
import os
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

from eval_grid import DATA, cached_embeddings  # noqa: E402

from hashmem.decoders import open_decoder  # noqa: E402
from hashmem.decoders.base import memory_content  # noqa: E402
from hashmem.decoders.summary import shown  # noqa: E402
from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.evaluation import summary as figures  # noqa: E402
from hashmem.memory import Memory  # noqa: E402
from hashmem.memory.embedding.embedder import DEFAULT_MODEL  # noqa: E402

METHODS = ("extractive", "model")
SETUPS = (("scifact-train", None, "text"), ("locomo", "conv", "text"), ("scifact-train", None, "hints"))


def spread(n_total: int, n: int) -> list[int]:
    return sorted(set(np.linspace(0, n_total - 1, min(n, n_total)).round().astype(int).tolist()))


def measure(mem: Memory, dec, data: ev.Dataset, queries: np.ndarray, picks: list[int], k: int) -> dict:
    rows = {m: [] for m in METHODS}
    raw_invented, raw_terms = 0, 0

    def draft_and_count(query, hits, sentences):  # the model's draft, counted before the check
        nonlocal raw_invented, raw_terms
        text = dec.summary_draft(query, hits, sentences)
        source = " ".join(memory_content(mem, h) for h in hits)
        bad, total = figures.invented(text, source)
        raw_invented, raw_terms = raw_invented + bad, raw_terms + total
        return text

    from hashmem.decoders import summary as summaries

    for n, qi in enumerate(picks):
        query = data.query_texts[qi]
        hits = mem.search_embeddings(queries[qi : qi + 1], k, namespace=data.query_namespaces[qi])[0]
        terms = figures.key_terms(hits)
        keep, _ = shown(mem, hits)
        source = " ".join(memory_content(mem, h) for h in keep)  # what the memories hold, not the query
        for method in (METHODS if n % 2 == 0 else METHODS[::-1]):
            t = time.perf_counter()
            if method == "model":
                s = summaries.from_model(mem, query, hits, draft_and_count, decoder=dec.name)
            else:
                s = dec.summarize(query, hits, method="extractive")
            ms = 1000 * (time.perf_counter() - t)
            bad, total = figures.invented(s.text, source)
            rows[method].append({
                "query": query, "found": s.found, "method_used": s.method, "summary": s.text, "ms": ms,
                "coverage": figures.coverage(s.text, terms) if s.found else None,
                "cosine": figures.centroid_cosine(mem, s.text, keep) if s.found else None,
                "invented": bad, "terms": total, "dropped": s.dropped, "sentences": len(s.sentences),
                "words": len(s.text.split()), "cites_per_sentence": (
                    float(np.mean([len(x.citations) for x in s.sentences])) if s.sentences else None)})
    out = {}
    for method, rs in rows.items():
        found = [r for r in rs if r["found"]]
        mean = lambda key: round(float(np.mean([r[key] for r in found if r[key] is not None])), 4) if found else None  # noqa: E731,B023
        inv, tot = sum(r["invented"] for r in rs), sum(r["terms"] for r in rs)
        out[method] = {
            "n": len(rs), "found": len(found), "coverage": mean("coverage"), "centroid_cosine": mean("cosine"),
            "invented_terms": inv, "number_and_name_terms": tot, "invented_rate": round(inv / tot, 4) if tot else 0.0,
            "words": mean("words"), "sentences": mean("sentences"),
            "ms_p50": round(float(np.percentile([r["ms"] for r in rs], 50)), 1),
            "ms_p90": round(float(np.percentile([r["ms"] for r in rs], 90)), 1),
        }
        if method == "model":
            out[method]["fell_back_to_extractive"] = sum(r["method_used"] == "extractive" for r in found)
            out[method]["sentences_dropped"] = sum(r["dropped"] for r in rs)
            out[method]["draft_invented_terms"] = raw_invented
            out[method]["draft_number_and_name_terms"] = raw_terms
            out[method]["draft_invented_rate"] = round(raw_invented / raw_terms, 4) if raw_terms else 0.0
    out["rows"] = [{"query": rows["extractive"][i]["query"], **{m: {key: rows[m][i][key] for key in (
        "summary", "method_used", "ms", "invented", "terms", "coverage", "cosine")} for m in METHODS}}
        for i in range(len(picks))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--model", default=None, help="a GGUF (default SmolLM2-135M-Instruct)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--setups", default="all", help="comma-separated indexes into SETUPS, or all")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "summarize.json"))
    args = ap.parse_args()
    chosen = SETUPS if args.setups == "all" else [SETUPS[int(i)] for i in args.setups.split(",")]
    result = {"k": args.k, "queries_per_setup": args.queries, "model": args.model or "SmolLM2-135M-Instruct Q4_1",
              "threads": args.threads, "load_start": os.getloadavg(), "setups": {}}
    with tempfile.TemporaryDirectory(prefix="hashmem-summarize-") as tmp:
        for name, field, fidelity in chosen:
            data = ev.load_beir(DATA / name, namespace_field=field)
            docs, queries = cached_embeddings(data, DEFAULT_MODEL)
            with Memory(Path(tmp) / f"{name}-{fidelity}.db", fidelity=fidelity) as mem:
                ev.ingest(mem, data, docs, progress=False)
                dec = open_decoder(mem, "llama", model=args.model, threads=args.threads)
                picks = spread(len(data.query_ids), args.queries)
                load = os.getloadavg()
                result["setups"][f"{name}/{fidelity}"] = r = measure(mem, dec, data, queries, picks, args.k)
                r["load_before"] = load
                r["load_after"] = os.getloadavg()
                Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")  # so far
                print(f"{name}/{fidelity}: " + "; ".join(
                    f"{m} cov {r[m]['coverage']} cos {r[m]['centroid_cosine']} inv {r[m]['invented_rate']} "
                    f"p50 {r[m]['ms_p50']}" for m in METHODS), file=sys.stderr)
    result["load_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
