"""eval-ask with the answer code of another git revision (default: main), for a before/after F1.

Loads ``decoders/llama.py`` as it is at REV into the ``hashmem.decoders`` package
and runs ``hashmem.evaluation.ask.evaluate`` with that module's LlamaDecoder.

Usage: python benchmarks/eval_ask_baseline.py DATASET_DIR [--rev main] [--limit 30] [--fidelity hints]
           [--details PATH] > result.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import hashmem.decoders as decoders
from hashmem.evaluation import ask as evalask


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset_dir")
    ap.add_argument("--rev", default="main")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--fidelity", default="hints")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--details", default=None)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "-C", str(root), "show", f"{args.rev}:decoders/llama.py"],
                            check=True, capture_output=True, text=True).stdout
    old = types.ModuleType("hashmem.decoders.llama_rev")
    old.__package__ = "hashmem.decoders"
    sys.modules[old.__name__] = old
    exec(compile(source, f"{args.rev}:decoders/llama.py", "exec"), old.__dict__)  # noqa: S102
    decoders.open_decoder = lambda mem, kind="llama", model=None, **o: old.LlamaDecoder(mem, model=model, **o)
    rows = [] if args.details else None
    result = evalask.evaluate(args.dataset_dir, fidelity=args.fidelity, limit=args.limit,
                              decoder_options={"threads": args.threads}, details=rows)
    result["decoder"] = f"llama@{args.rev}"
    if rows is not None:
        with open(args.details, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
