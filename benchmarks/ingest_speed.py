"""Ingest speed: passages/s of ``Memory.add`` against plain ``SentenceTransformer.encode``.

Both embed the same scifact-train passages (title + text, as ``hashmem eval``
stores them) with the same loaded model, in one process, after a warm-up; the
runs alternate (encode, add, encode, add, ...) and the best of each is kept, so
a noisy neighbour hurts both alike. ``Memory.add`` also pays its own costs: the
int8 calibration (256 pseudo-passages embedded with the first batch), hints,
SQLite transactions and, past 1,024 passages, the first hasher fit; their
shares are reported from timers wrapped around those functions.

Target (issue 2): ratio add / encode >= 0.9.

Run (2 shared cores; takes the benchmark lock):

    HF_HUB_OFFLINE=1 flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/ingest_speed.py
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from eval_grid import DATA, DOC, write_section  # noqa: E402

from memory import Memory, hints  # noqa: E402
from memory import eval as ev  # noqa: E402
from memory import store as store_mod  # noqa: E402
from memory.embed import Embedder, load_model  # noqa: E402
from memory.storage import Storage  # noqa: E402

TIMERS: dict[str, float] = defaultdict(float)


def timed(owner, name: str, label: str) -> None:
    """Wrap owner.name so that its time adds up in TIMERS[label]."""
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            TIMERS[label] += time.perf_counter() - t

    setattr(owner, name, wrapper)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=1000, help="passages (the first n of scifact-train)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256, help="Memory batch_size (passages per transaction)")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "ingest_speed.json")
    args = p.parse_args()

    data = ev.load_beir(DATA / "scifact-train")
    texts = data.doc_texts[: args.n]
    emb = Embedder()
    st = load_model(emb.name)
    st.encode(texts[:64], batch_size=emb.batch_size)  # warm-up: load weights, first-call overhead

    timed(Embedder, "encode", "embed (all calls)")
    timed(Embedder, "calibration_texts", "calibration texts")
    timed(hints, "encode", "hints.encode")
    timed(hints, "tokenize", "hints.tokenize")
    timed(Storage, "insert", "sqlite insert")
    timed(Storage, "save_lexicon", "sqlite lexicon")
    timed(store_mod.Memory, "refit", "refit (hasher fit + re-encode)")

    plain, store = [], []
    breakdown = {}
    for _ in range(args.repeats):
        t = time.perf_counter()
        st.encode(texts, batch_size=emb.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        plain.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            with Memory(Path(tmp) / "ingest.db", batch_size=args.batch_size) as mem:
                TIMERS.clear()
                t = time.perf_counter()
                mem.add(texts, progress=False)
                store.append(time.perf_counter() - t)
                if store[-1] == min(store):
                    breakdown = dict(TIMERS)
                    fitted = mem.hasher.fitted_on
        print(f"encode {plain[-1]:.1f} s   Memory.add {store[-1]:.1f} s", file=sys.stderr)

    t = time.perf_counter()
    emb.encode(emb.calibration_texts(), progress=False)
    calibration = time.perf_counter() - t  # part of "embed (all calls)" in the first batch

    n = len(texts)
    plain_rate, store_rate = n / min(plain), n / min(store)
    result = {
        "passages": n,
        "mean_chars": sum(map(len, texts)) / n,
        "encode_passages_per_s": plain_rate,
        "add_passages_per_s": store_rate,
        "ratio": store_rate / plain_rate,
        "encode_seconds": plain,
        "add_seconds": store,
        "add_breakdown_seconds": breakdown,
        "hasher_fitted_on": fitted,
        "calibration_embed_seconds": calibration,
        "batch_size": args.batch_size,
        "command": "HF_HUB_OFFLINE=1 flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/ingest_speed.py "
        + " ".join(sys.argv[1:]),
    }
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"Command: `{result['command'].strip()}`",
        "",
        f"{n} scifact-train passages (title + text, {result['mean_chars']:.0f} chars mean), all-MiniLM-L6-v2 "
        f"on CPU, best of {args.repeats} alternating runs:",
        "",
        "| | passages/s | seconds |",
        "|---|---:|---:|",
        f"| `SentenceTransformer.encode` | {plain_rate:.1f} | {min(plain):.1f} |",
        f"| `Memory.add` (batch {args.batch_size}) | {store_rate:.1f} | {min(store):.1f} |",
        f"| **ratio** | **{result['ratio']:.3f}** | |",
        "",
        "Where `Memory.add`'s time went (best run):",
        "",
        "| part | seconds | share |",
        "|---|---:|---:|",
    ]
    total = min(store)
    for part, sec in sorted(breakdown.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {part} | {sec:.2f} | {sec / total:.1%} |")
    lines.append(f"| everything else | {total - sum(breakdown.values()):.2f} | "
                 f"{(total - sum(breakdown.values())) / total:.1%} |")
    lines += ["", f"Of the embedding time, the int8 calibration (256 pseudo-passages embedded once, with the "
              f"first batch) takes {calibration:.2f} s ({calibration / total:.1%} of `Memory.add`), measured "
              "separately. Hasher fitted on: " + str(fitted) + " passages."]
    write_section(DOC, "ingest-speed", "\n".join(lines))
    print(json.dumps({k: v for k, v in result.items() if k != "add_breakdown_seconds"}, indent=1))
    print(json.dumps(breakdown, indent=1))


if __name__ == "__main__":
    main()
