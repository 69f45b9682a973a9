"""A `text` store's add at a few zstd levels for its final bodies (issue 19 item 1: the trade-offs).

SciFact-train's 5,183 abstracts with precomputed embeddings (``ingest_profile.workload``) are
added to a new ``text`` store, alternating per round, with each configuration of ``--levels``:

- ``19`` (today's code): final bodies at level 19, a large add's earlier batches at 15 and
  recompressed by its last re-training (``tiers.provisional``), which is trained on a thread
  during the add's last batches (``TextTier.start_trial``);
- ``N`` (17, 16, ...): the same code with ``tiers.text.LEVEL`` = N (at or below 15, with no
  provisional pass: every body at N);
- ``N:late``: the last re-training not started early (``provisional.EARLY`` = 0), as before
  ``start_trial``.

The levels are patched in this process (``tiers.text.LEVEL``, the defaults of
``TextTier.encode`` and ``_compressor``, ``provisional.Bodies``). Reported per round: the add's
seconds, the file's bytes and the stored bodies' bytes per passage.

    .venv/bin/python benchmarks/text_level_ab.py [--rounds 2] [--levels 19 17 19:late] [--json ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_profile import workload  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--levels", nargs="+", default=["19", "15"],
                    help="final body levels compared (at or below provisional.LEVEL: no provisional pass); "
                         "LEVEL:late: the add's last retraining not started early (provisional.EARLY = 0)")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "text_level_ab.json")
    args = ap.parse_args()

    from hashmem.memory import Memory
    from hashmem.memory.tiers import provisional, text

    texts, emb = workload(5183)
    today = (text.LEVEL, provisional.Bodies.level, provisional.Bodies.settle, provisional.EARLY)

    def use(spec: str) -> None:
        level, _, late = str(spec).partition(":")
        level = int(level)
        provisional.EARLY = 0 if late == "late" else today[3]
        text.LEVEL = level
        text.TextTier.encode.__kwdefaults__["level"] = level
        text.TextTier._compressor.__defaults__ = (None, level)
        if level > provisional.LEVEL:
            provisional.Bodies.level, provisional.Bodies.settle = today[1], today[2]
        else:
            provisional.Bodies.level = lambda self, offset, size: text.LEVEL
            provisional.Bodies.settle = lambda self: None

    runs: dict[str, list] = {}
    load = [round(x, 2) for x in os.getloadavg()]
    for r in range(args.rounds):
        for level in args.levels if r % 2 == 0 else args.levels[::-1]:
            use(level)
            with tempfile.TemporaryDirectory() as d:
                with Memory(Path(d) / "s.db", fidelity="text") as mem:
                    mem.embedder.encode(["warm up"])
                    t = time.perf_counter()
                    mem.add(texts, embeddings=emb, progress=False)
                    seconds = time.perf_counter() - t
                    bodies = sum(len(b) for _, bs in mem._text_tier().storage.iter_texts() for b in bs)
                size = os.path.getsize(Path(d) / "s.db")
            row = {"seconds": round(seconds, 2), "file_bytes": size,
                   "bodies_bytes_per_passage": round(bodies / len(texts), 1)}
            runs.setdefault(f"level {level}", []).append(row)
            print(f"level {level}: {row}", flush=True)
            use(str(today[0]))
    out = {"command": f"benchmarks/text_level_ab.py --rounds {args.rounds} --levels {' '.join(map(str, args.levels))}", "passages": len(texts), "runs": runs,
           "load_average_start": load, "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
