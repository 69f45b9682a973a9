"""How the extract answer's score was chosen: candidates, features and model scores per LoCoMo question, then a grid.

collect: a text store of every LoCoMo turn (as eval-ask stores them), the top K turns per
question, the candidates of ``decoders.spans`` with their features (rank, overlap, near),
the model's log-probabilities (first token; whole reply up to the end of the turn) and the
cosine between the candidate's and the question's embeddings; one JSON line per question.
tune: token F1 of the candidate each scoring formula picks (answerable questions), the
oracle (best candidate), with and without a first-token shortlist.

    python benchmarks/ask_extract_tune.py collect OUT.jsonl [--k 5] [--limit 60]
    python benchmarks/ask_extract_tune.py tune OUT.jsonl > RESULT.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hashmem.decoders import llama as dl
from hashmem.decoders import prompts, spans
from hashmem.decoders.base import answerable, memory_blocks
from hashmem.evaluation.ask import ANSWERABLE, _day, load, pick, token_f1
from hashmem.memory import Memory

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "locomo"
FORMULAS = {  # weights of: mean reply log-prob, reply log-prob, first-token log-prob, rank, near, cosine
    "model (mean log-prob)": dict(lpn=1),
    "model (sum log-prob)": dict(lp=1),
    "model (first token)": dict(lp0=1),
    "embedding cosine": dict(cos=1),
    "near + rank (no model)": dict(near=1, rank=0.3),
    "model + near": dict(lpn=1, near=2),
    "model + near + rank (chosen)": dict(lpn=1, near=2, rank=0.3),
    "model + near + rank + cosine": dict(lpn=1, near=2, rank=0.3, cos=2),
    "model + near + 0.5 rank": dict(lpn=1, near=2, rank=0.5),
    "model + near + 0.15 rank": dict(lpn=1, near=2, rank=0.15),
    "model + 1 near + rank": dict(lpn=1, near=1, rank=0.3),
}


def collect(out: str, k: int, limit: int, data: Path) -> None:
    turns, questions = load(data)
    chosen = pick(questions, limit)
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "t.db", fidelity="text") as mem, \
            open(out, "w", encoding="utf-8") as f:
        for conv in sorted({t["conv"] for t in turns}):
            mine = [t for t in turns if t["conv"] == conv]
            mem.add([f"({_day(t['date_time'])}) {t['text']}" for t in mine], namespace=conv, progress=False)
        dec = dl.LlamaDecoder(mem, threads=1)
        for q in chosen:
            rel = answerable(mem.search(q["text"], k, namespace=q["conv"]))
            contents = {h.id: mem.get(h.id).text for h in rel}
            started = time.perf_counter()
            cands = spans.candidates(q["text"], contents, [h.id for h in rel])
            parts = prompts.question_turn(memory_blocks(mem, rel), q["text"])
            prompt = dec._prompt_tokens(prompts.SPAN_SYSTEM, parts)
            scores = []
            if cands:
                first = dec.first_token_logprobs(prompt)
                for c in cands:
                    toks = dec.llm.tokenize(c.text.encode("utf-8"), add_bos=False, special=False)
                    scores.append((float(first[toks[0]]), dec.reply_logprobs([toks], first)[0], len(toks) + 1))
                emb = mem.embedder.encode([q["text"]] + [c.text for c in cands], progress=False)
                cos = (emb[1:] @ emb[0]).tolist()
            f.write(json.dumps({
                "id": q["_id"], "cat": q["category"], "q": q["text"], "kind": spans.question_kind(q["text"]),
                "gold": "" if q["answer"] is None else str(q["answer"]), "ms": (time.perf_counter() - started) * 1000,
                "cands": [[c.text, c.source, c.rank, c.overlap, c.near, s[0], s[1], s[2], cs]
                          for c, s, cs in zip(cands, scores, cos if cands else [], strict=True)],
            }) + "\n")
            f.flush()


def _pick(row: dict, w: dict, shortlist: int | None) -> str | None:
    cands = row["cands"]
    if shortlist:
        cands = sorted(cands, key=lambda c: -(c[5] + 2 * c[4]))[:shortlist]
    best, best_score = None, float("-inf")
    for text, _src, rank, _overlap, near, lp0, lp, n, cos in cands:
        f = dict(lp=lp, lpn=lp / n, lp0=lp0, rank=-rank, near=near, cos=cos)
        s = sum(w.get(key, 0.0) * v for key, v in f.items())
        if s > best_score:
            best, best_score = text, s
    return best


def tune(path: str) -> dict:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    rows = [r for r in rows if r["cat"] in ANSWERABLE]
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    out = {"questions": len(rows), "formulas": {}}
    for name, w in FORMULAS.items():
        res = {}
        for shortlist in (None, 8, 12, 16, 24):
            f1 = [token_f1(_pick(r, w, shortlist) or "", r["gold"]) for r in rows]
            res["all" if shortlist is None else f"shortlist {shortlist}"] = mean(f1)
        by_kind = {}
        for r in rows:
            by_kind.setdefault(r["kind"], []).append(token_f1(_pick(r, w, 16) or "", r["gold"]))
        res["by kind (shortlist 16)"] = {kd: [len(v), mean(v)] for kd, v in by_kind.items()}
        out["formulas"][name] = res
    oracle = [max([token_f1(c[0], r["gold"]) for c in r["cands"]] or [0.0]) for r in rows]
    out["oracle (best candidate)"] = mean(oracle)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["collect", "tune"])
    ap.add_argument("path")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    if args.step == "collect":
        collect(args.path, args.k, args.limit, args.data)
    else:
        print(json.dumps(tune(args.path), indent=1))


if __name__ == "__main__":
    main()
