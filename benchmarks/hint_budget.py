"""Hint budget: what 32 / 48 / 64 / 96 bytes of lexical hints keep of scifact-train passages.

Hints are built exactly as ``Memory.add`` builds them (batches of 256: the
lexicon observes a batch, then each passage of the batch is encoded against the
lexicon as it stands), without embedding anything. Per budget it reports the
real mean hint bytes per passage, the hints per passage, and the share of each
passage's distinct numbers and capitalized names (``hints.tokenize`` kinds
"number" and "name") that the hints keep, micro-averaged over all passages
(kept / present) and macro-averaged over the passages that have any.

Run (no model; takes the benchmark lock because it times nothing but uses CPU):

    flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/hint_budget.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from eval_grid import DATA, DOC, write_section  # noqa: E402

from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.memory import hints  # noqa: E402
from hashmem.memory.config import DEFAULT_HINT_BYTES  # noqa: E402

BATCH = 256  # Memory's default batch_size


def measure(texts: list[str], budget: int) -> dict:
    lex = hints.Lexicon()
    sizes, items = [], []
    kept = {"number": 0, "name": 0, "word": 0}
    present = {"number": 0, "name": 0, "word": 0}
    macro = {"number": [], "name": []}
    for s in range(0, len(texts), BATCH):
        toks = [hints.tokenize(t) for t in texts[s : s + BATCH]]
        lex.observe(hints.terms_of(t) for t in toks)
        for t in toks:
            blob = hints.encode(t, lex, budget=budget)
            decoded = set(hints.decode(blob, lex))
            sizes.append(len(blob))
            items.append(len(decoded))
            for kind in present:
                keys = {x.key for x in t if x.kind == kind}
                hit = len(keys & decoded)
                present[kind] += len(keys)
                kept[kind] += hit
                if kind in macro and keys:
                    macro[kind].append(hit / len(keys))
    n = len(texts)
    return {
        "budget": budget,
        "mean_bytes": sum(sizes) / n,
        "max_bytes": max(sizes),
        "mean_items": sum(items) / n,
        "numbers_kept": kept["number"] / max(present["number"], 1),
        "numbers_kept_macro": sum(macro["number"]) / max(len(macro["number"]), 1),
        "passages_with_numbers": len(macro["number"]) / n,
        "names_kept": kept["name"] / max(present["name"], 1),
        "names_kept_macro": sum(macro["name"]) / max(len(macro["name"]), 1),
        "passages_with_names": len(macro["name"]) / n,
        "words_kept": kept["word"] / max(present["word"], 1),
        "distinct_numbers_per_passage": present["number"] / n,
        "distinct_names_per_passage": present["name"] / n,
        "distinct_words_per_passage": present["word"] / n,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="scifact-train")
    p.add_argument("--budgets", nargs="+", type=int, default=[32, 48, 64, 96])
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "hint_budget.json")
    args = p.parse_args()
    data = ev.load_beir(DATA / args.dataset)
    rows = [measure(data.doc_texts, b) for b in args.budgets]
    command = "flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/hint_budget.py " + " ".join(sys.argv[1:])
    args.json.write_text(json.dumps({"command": command.strip(), "dataset": args.dataset, "rows": rows}, indent=1) + "\n")
    r0 = rows[0]
    lines = [
        f"Command: `{command.strip()}`",
        "",
        f"{args.dataset}: {len(data.doc_texts)} passages (title + text), per passage "
        f"{r0['distinct_numbers_per_passage']:.1f} distinct numbers, {r0['distinct_names_per_passage']:.1f} "
        f"capitalized names and {r0['distinct_words_per_passage']:.1f} other words. Kept = share of them in "
        "the hints (micro: over all passages; macro: mean over passages that have any). "
        f"Current default: {DEFAULT_HINT_BYTES} B.",
        "",
        "| budget B | mean bytes | max bytes | hints/passage | numbers kept | (macro) | names kept | (macro) | other words kept |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['budget']} | {r['mean_bytes']:.1f} | {r['max_bytes']} | {r['mean_items']:.1f} | "
            f"{r['numbers_kept']:.1%} | {r['numbers_kept_macro']:.1%} | {r['names_kept']:.1%} | "
            f"{r['names_kept_macro']:.1%} | {r['words_kept']:.1%} |"
        )
    write_section(DOC, "hint-budget", "\n".join(lines))
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
