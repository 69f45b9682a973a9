"""Issue 20 item 4: does ``recency_weight`` help LoCoMo's temporal questions? Evidence recall@5 with and without.

A store's created time is the wall clock of each add's batch, so the LoCoMo turns are added
as they happened: per conversation, one ``Memory.add`` per session in session order (the
sessions' dates rise with their number), each its own batch and so its own created time.
The session's date is also in each stored passage's text ("conv-26 session 1 (1:56 pm on
8 May, 2023) Caroline: …", the BEIR view's title + text, as ``hashmem eval`` stores it).
Recency uses only the order of the created times (``memory.recency``), so the seconds
between two adds here do not matter.

For a ``hints`` and a ``text`` store, ``binary+int8`` and ``hybrid`` at the store's default
lexical weight, every recency weight of ``WEIGHTS``: evidence recall@5 (LoCoMo's measure:
gold evidence turns among the top 5 / gold evidence turns) and nDCG@10 of the temporal
questions (category 2), of each other category and of all; and how far down the sessions
the temporal questions' evidence lies.

Run (2 shared cores; a minute or two once the embeddings are cached):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/recency.py [--out benchmarks/results/recency_locomo.json]
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

from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.memory import Memory  # noqa: E402
from hashmem.memory.embedding.embedder import DEFAULT_MODEL  # noqa: E402

WEIGHTS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


def sessions_of(root: Path) -> dict[str, int]:
    """Turn id → its session number."""
    out = {}
    with open(root / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out[d["_id"]] = int(d["session"])
    return out


def categories_of(root: Path) -> dict[str, int]:
    out = {}
    with open(root / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out[d["_id"]] = int(d["category"])
    return out


def build(path: Path, data: ev.Dataset, docs: np.ndarray, session: dict[str, int], fidelity: str) -> Memory:
    """A store of the turns, each conversation's sessions added in order, one add (batch) each."""
    mem = Memory(path, fidelity=fidelity)
    groups: dict[tuple[str, int], list[int]] = {}
    for i, (did, ns) in enumerate(zip(data.doc_ids, data.doc_namespaces, strict=True)):
        groups.setdefault((ns, session[did]), []).append(i)
    for (ns, _), pos in sorted(groups.items()):
        mem.add([data.doc_texts[i] for i in pos], embeddings=docs[pos],
                metadata=[{"_id": data.doc_ids[i]} for i in pos], namespace=ns, progress=False)
    return mem


def run(mem: Memory, data: ev.Dataset, queries: np.ndarray, *, mode: str, weight: float) -> dict[str, list[str]]:
    out = {}
    for qi, qid in enumerate(data.query_ids):
        hits = mem.search_embeddings(queries[qi : qi + 1], 10, namespace=data.query_namespaces[qi], mode=mode,
                                     query_texts=[data.query_texts[qi]] if mode == "hybrid" else None,
                                     recency_weight=weight)[0]
        out[qid] = [h.metadata["_id"] for h in hits]
    return out


def scores(run_: dict, data: ev.Dataset, cats: dict[str, int]) -> dict:
    out = {}
    groups = {"all": list(run_)} | {CATEGORIES[c]: [q for q in run_ if cats[q] == c] for c in sorted(CATEGORIES)}
    for name, qids in groups.items():
        if not qids:
            continue
        s = ev.score_run({q: run_[q] for q in qids}, {q: data.qrels[q] for q in qids})
        out[name] = {"n": len(qids), "recall@5": round(s["recall@5"], 4), "ndcg@10": round(s["ndcg@10"], 4)}
    return out


def evidence_position(data: ev.Dataset, cats: dict[str, int], session: dict[str, int]) -> dict:
    """Where temporal questions' evidence lies: its session's position in the conversation (0 first … 1 last)."""
    last: dict[str, int] = {}
    for did, ns in zip(data.doc_ids, data.doc_namespaces, strict=True):
        last[ns] = max(last.get(ns, 0), session[did])
    out = {}
    for c, name in CATEGORIES.items():
        pos = [(session[d] - 1) / max(last[ns] - 1, 1)
               for q, ns in zip(data.query_ids, data.query_namespaces, strict=True) if cats[q] == c
               for d in data.qrels[q] if d in session]
        if pos:
            out[name] = {"evidence_turns": len(pos), "mean_position": round(float(np.mean(pos)), 3),
                         "share_in_last_quarter": round(float(np.mean(np.asarray(pos) >= 0.75)), 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "recency_locomo.json"))
    args = ap.parse_args()
    root = DATA / "locomo"
    data = ev.load_beir(root, namespace_field="conv")
    docs, queries = cached_embeddings(data, DEFAULT_MODEL)
    session, cats = sessions_of(root), categories_of(root)
    result = {"dataset": "locomo", "n_docs": len(data.doc_ids), "n_queries": len(data.query_ids),
              "weights": list(WEIGHTS), "load_start": os.getloadavg(),
              "evidence_position": evidence_position(data, cats, session), "stores": {}}
    with tempfile.TemporaryDirectory(prefix="hashmem-recency-") as tmp:
        for fidelity in ("hints", "text"):
            t = time.perf_counter()
            with build(Path(tmp) / f"{fidelity}.db", data, docs, session, fidelity) as mem:
                built = time.perf_counter() - t
                per: dict = {}
                for mode in ("binary+int8", "hybrid"):
                    per[mode] = {}
                    for w in WEIGHTS:
                        per[mode][str(w)] = s = scores(run(mem, data, queries, mode=mode, weight=w), data, cats)
                        print(f"{fidelity:5} {mode:11} w={w:<5} temporal R@5 {s['temporal']['recall@5']:.4f}  "
                              f"all R@5 {s['all']['recall@5']:.4f}", file=sys.stderr)
                result["stores"][fidelity] = {"build_s": round(built, 1), "modes": per}
    result["load_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
