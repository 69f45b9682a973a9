"""Answer containment for ask at several k (no model): how often the top k turns hold every gold answer token.

A text store of the LoCoMo turns (as eval-ask stores them); for the answerable questions of
``--limit`` sets (spread over the file; "all" for every question), the share whose gold tokens
all occur in the exact text, and in the hints, of the top k turns of the question's conversation.

    python benchmarks/ask_containment.py > benchmarks/results/ask_containment.json
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hashmem.evaluation.ask import ANSWERABLE, _day, contains, load, pick
from hashmem.memory import Memory

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "locomo"


def main() -> None:
    turns, questions = load(DATA)
    out = {}
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "t.db", fidelity="text") as mem:
        for conv in sorted({t["conv"] for t in turns}):
            mine = [t for t in turns if t["conv"] == conv]
            mem.add([f"({_day(t['date_time'])}) {t['text']}" for t in mine], namespace=conv, progress=False)
        for limit in (30, 50, 60, None):
            chosen = [q for q in pick(questions, limit) if q["category"] in ANSWERABLE]
            row = {"answerable": len(chosen)}
            for k in (5, 10, 20):
                exact = hints = 0
                for q in chosen:
                    hits = mem.search(q["text"], k, namespace=q["conv"])
                    gold = str(q["answer"])
                    exact += contains(" ".join(mem.get(h.id).text for h in hits), gold)
                    hints += contains(" ".join(" ".join(h.hints) for h in hits), gold)
                row[f"k={k}"] = {"exact": round(exact / len(chosen), 3), "hints": round(hints / len(chosen), 3)}
            out["all" if limit is None else f"limit {limit}"] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
