"""`hashmem add` of one long single-line text file: passages, seconds, passages/s (the README's ingest-rate line).

    .venv/bin/python benchmarks/long_line.py [--mb 1] [--json PATH]

The line is SciFact passages (../shared/data/scifact-train/corpus.jsonl) joined by spaces until it
holds --mb megabytes; the CLI runs in a child process on a new store, as a user would run it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train" / "corpus.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hashmem-longline-"))
    parts, size = [], 0
    with open(CORPUS, encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"].replace("\n", " ")
            parts.append(text)
            size += len(text.encode()) + 1
            if size >= args.mb * 1e6:
                break
    src = tmp / "line.txt"
    src.write_text(" ".join(parts), encoding="utf-8")
    store = tmp / "s.db"
    cli = [sys.executable, "-c", "from hashmem.cli.main import main; main()", "-q", "--store", str(store)]
    subprocess.run([*cli, "init"], check=True, capture_output=True)
    t = time.perf_counter()
    subprocess.run([*cli, "add", str(src)], check=True, capture_output=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - t
    n = json.loads(subprocess.run([*cli, "stats", "--json"], check=True, capture_output=True, text=True).stdout)
    passages = n["records"]
    out = {"command": f"python benchmarks/long_line.py --mb {args.mb:g}", "bytes": src.stat().st_size,
           "passages": passages, "seconds": round(seconds, 1), "passages_per_s": round(passages / seconds, 1),
           "loadavg_after": list(os.getloadavg())}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
