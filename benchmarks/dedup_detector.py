"""The near-duplicate detector (``memory.dedup``): precision and recall per threshold, and ingest cost.

**Pairs** (``benchmarks/data/dedup_pairs.jsonl``, one labelled pair a line; ``a`` and ``b`` are
ids in ../shared/data):

- ``paraphrase`` (44): a LoCoMo turn ``a`` and ``b_text``, a paraphrase written for this test;
- ``exact`` (64): ``a`` itself (44 LoCoMo turns, 20 SciFact abstracts);
- ``case_space`` (64): ``a`` lowercased, uppercased, or with its spaces doubled and a trailing
  newline (``edit``);
- ``near_topic`` (92, not duplicates): a LoCoMo turn and the other turn of the same
  conversation nearest it by float cosine (44), two different SciFact abstracts cited for
  the same claim (48).

**Store**: the whole LoCoMo corpus (namespace ``locomo``) and the SciFact abstracts of the pairs
plus the first ``--background`` others (namespace ``scifact-train``), *without* the ``b`` of
every near-topic pair; each ``b`` is then checked as a new passage through the real path
(``dedup.best_stored``: Hamming candidates, then int8 cosine against the whole namespace).
A duplicate pair is found when ``b``'s best match is ``a`` at or above the threshold; a
near-topic ``b`` matched to *anything* at or above it is a false merge, and so is a duplicate
``b`` matched to another record. Precision = found / (found + false merges).

**Ingest cost**: ``Memory.add`` of SciFact (5,183 abstracts, title + text) into a fresh store
with ``dedup="keep"`` and with ``dedup="skip"``, alternating, best of ``--rounds`` each, from
embeddings made once (the pipeline alone: quantize, hash, hints, dedup, insert, upkeep); the
embedding pass is timed in the same run, and the ratio with it is (embedding + pipeline) of each.

    .venv/bin/python benchmarks/dedup_detector.py --out benchmarks/results/dedup_detector.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hashmem.memory import Memory, dedup

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PAIRS = ROOT / "benchmarks" / "data" / "dedup_pairs.jsonl"
THRESHOLDS = [round(0.80 + 0.01 * i, 2) for i in range(20)]
TARGET_PRECISION, TARGET_RECALL = 0.95, 0.9


def load_corpus(name: str) -> dict[str, str]:
    out = {}
    with open(DATA / name / "corpus.jsonl") as f:
        for line in f:
            d = json.loads(line)
            out[d["_id"]] = d["text"] if name == "locomo" else f"{d['title']} {d['text']}".strip()
    return out


def b_text(pair: dict, corpus: dict[str, str]) -> str:
    a = corpus[pair["a"]]
    kind = pair["kind"]
    if kind == "paraphrase":
        return pair["b_text"]
    if kind == "exact":
        return a
    if kind == "case_space":
        return {"lower": a.lower(), "upper": a.upper(), "spaces": a.replace(" ", "  ") + "\n"}[pair["edit"]]
    return corpus[pair["b"]]


def detector(background: int) -> dict:
    pairs = [json.loads(line) for line in PAIRS.open()]
    corpora = {"locomo": load_corpus("locomo"), "scifact-train": load_corpus("scifact-train")}
    held_out = {(p["dataset"], p["b"]) for p in pairs if p["kind"] == "near_topic"}
    with tempfile.TemporaryDirectory() as tmp:
        mem = Memory(Path(tmp) / "pairs.db")
        stored: dict[tuple[str, str], int] = {}
        for ds, corpus in corpora.items():
            keys = list(corpus) if ds == "locomo" else list(dict.fromkeys(
                [p["a"] for p in pairs if p["dataset"] == ds] + list(corpus)[:background]))
            keys = [k for k in keys if (ds, k) not in held_out]
            ids = mem.add([corpus[k] for k in keys], namespace=ds, progress=False)
            stored.update({(ds, k): i for k, i in zip(keys, ids, strict=True)})
        texts = [b_text(p, corpora[p["dataset"]]) for p in pairs]
        emb = mem.embedder.encode(texts, progress=False)
        qv = mem.quantizer.encode(emb)
        deq = mem.quantizer.decode(qv)
        codes = mem.hasher.encode(deq)
        best = []
        for j, p in enumerate(pairs):
            got = dedup.best_stored(mem.backend, mem.hasher, mem.quantizer, p["dataset"], deq[j : j + 1],
                                    codes[j : j + 1])[0]
            best.append(got)
        records = len(mem)
        mem.close()
    rows = []
    for t in THRESHOLDS:
        tp = fp = fn = 0
        by_kind: dict[str, list[int]] = {}
        for p, got in zip(pairs, best, strict=True):
            hit = bool(got is not None and got[1] >= t)
            right = hit and p["duplicate"] and got[0] == stored[(p["dataset"], p["a"])]
            if p["duplicate"]:
                tp += right
                fn += not right
                fp += hit and not right
            else:
                fp += hit
            by_kind.setdefault(p["kind"], []).append(int(right if p["duplicate"] else hit))
        prec = tp / (tp + fp) if tp + fp else 1.0
        rows.append({"threshold": t, "precision": round(prec, 4), "recall": round(tp / (tp + fn), 4),
                     "found_by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in by_kind.items()},
                     "false_merges": fp})
    ok = [r["threshold"] for r in rows if r["precision"] >= TARGET_PRECISION and r["recall"] >= TARGET_RECALL]
    chosen = round(float(np.median(ok)), 2) if ok else None
    scores = {k: sorted(round(g[1], 4) if g else None for p, g in zip(pairs, best, strict=True) if p["kind"] == k)
              for k in ("paraphrase", "near_topic")}
    return {"pairs": len(pairs), "records": records, "rows": rows, "thresholds_meeting_targets": ok,
            "chosen": chosen, "chosen_rule": "the median of the thresholds meeting both targets",
            "best_scores": scores}


def ingest(rounds: int) -> dict:
    corpus = load_corpus("scifact-train")
    texts = list(corpus.values())
    with tempfile.TemporaryDirectory() as tmp:
        with Memory(Path(tmp) / "embed.db") as mem:
            t0 = time.perf_counter()
            emb = mem.embedder.encode(texts, progress=False)
            embed_s = time.perf_counter() - t0
        times: dict[str, list[float]] = {"keep": [], "skip": []}
        skipped = 0
        for r in range(rounds):
            for policy in ("keep", "skip") if r % 2 == 0 else ("skip", "keep"):
                with Memory(Path(tmp) / f"{policy}{r}.db") as mem:
                    t0 = time.perf_counter()
                    ids = mem.add(texts, dedup=policy, embeddings=emb, progress=False)
                    times[policy].append(time.perf_counter() - t0)
                    skipped = max(skipped, len(ids) - len(set(ids)))
    keep, skip = min(times["keep"]), min(times["skip"])
    return {"passages": len(texts), "rounds": rounds, "embed_seconds": round(embed_s, 2),
            "pipeline_seconds": times, "ratio_pipeline_only": round(skip / keep, 3),
            "ratio_with_embedding": round((embed_s + skip) / (embed_s + keep), 3),
            "ratio_with_embedding_is": "(embedding + best skip pipeline) / (embedding + best keep pipeline), "
                                       "one embedding pass timed in the same run",
            "repeats_skipped": skipped}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--background", type=int, default=1500, help="SciFact abstracts stored besides the pairs'")
    ap.add_argument("--rounds", type=int, default=1, help="ingest runs per policy (best kept)")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--detector-from", type=Path, default=None, help="reuse the detector part of an earlier result")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    result = {"detector": json.loads(args.detector_from.read_text())["detector"] if args.detector_from
              else detector(args.background)}
    for r in result["detector"]["rows"]:
        sys.stderr.write(f"t={r['threshold']:.2f} P={r['precision']:.3f} R={r['recall']:.3f} "
                         f"{r['found_by_kind']}\n")
    sys.stderr.write(f"chosen {result['detector']['chosen']}\n")
    if not args.skip_ingest:
        result["ingest"] = ingest(args.rounds)
        sys.stderr.write(json.dumps({k: v for k, v in result["ingest"].items() if k != "seconds"}) + "\n")
    result["default_threshold"] = dedup.DEFAULT_THRESHOLD
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
