"""Markdown tables of the eval-recall results in benchmarks/results (see docs/recall.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    if not p.exists() or not p.stat().st_size:
        return None
    return json.loads(p.read_text())


def decoder_rows(names: list[str], label) -> list[str]:
    rows = ["| run | decoder | hint B | cosine mean | median | invented | ms p50 | ms p90 |",
            "|---|---|---|---|---|---|---|---|"]
    for name in names:
        d = load(name)
        if d is None:
            continue
        for dec, m in d["decoders"].items():
            rows.append(f"| {label(name)} | {dec} | {d['hint_bytes_mean']:.1f} | {m['cosine_mean']:.4f} | "
                        f"{m['cosine_median']:.4f} | {m['invented_rate']:.3f} | {m['ms_p50']:.0f} | {m['ms_p90']:.0f} |")
    return rows


def text_rows(names: list[str]) -> list[str]:
    rows = ["| run | text tier B/passage | gzip -9 | zstd -19 | text tier / gzip -9 |", "|---|---|---|---|---|"]
    for name in names:
        d = load(name)
        if d is None:
            continue
        t = d["text_tier"]
        rows.append(f"| {name} | {t['bytes_per_passage']:.1f} | {t['gzip9_bytes_per_passage']:.1f} | "
                    f"{t['zstd19_bytes_per_passage']:.1f} | {t['bytes_per_passage'] / t['gzip9_bytes_per_passage']:.3f} |")
    return rows


def main() -> None:
    main_runs = ["scifact_main_first", "scifact_main", "canterbury_main", "scifact_main_t1", "canterbury_main_t1"]
    budget = [f"{ds}_hint{b}" for ds in ("scifact", "canterbury") for b in (32, 64, 128)]
    choices = ["scifact_n1", "scifact_n2", "scifact_n3", "scifact_n5", "scifact_expand8", "scifact_free"]
    out = ["### Default hint budget (48 B)", *decoder_rows(main_runs, str), "",
           "### Hint budget", *decoder_rows(budget, str), "",
           "### Decoder choices (SciFact, 40 passages)", *decoder_rows(choices, str), "",
           "### Text tier (eval-recall runs made with the current code)", *text_rows(["scifact_main", "canterbury_main"])]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
