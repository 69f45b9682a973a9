"""Where ``Memory.add(texts, embeddings=...)`` spends its time, stage by stage (issue 19, part 1).

SciFact-train's 5,183 abstracts are added in one call, with precomputed embeddings (random
but structured unit vectors, as ``backend_overhead.py`` makes them: the embedder is not what
is measured), into a new ``hints`` store and a new ``text`` store. Timers wrapped around the
pipeline's functions add up each stage's *own* time (a stage's time less the stages it
calls), so the stages and "the rest" add up to the add's wall time:

- quantize (``Quantizer.encode``/``decode``), hash (``Hasher.encode``), quantizer calibration
  (the pseudo-passages embedded once with the first batch);
- hints: tokenize, terms, encode; lexicon update (``Lexicon.observe``) and its SQLite write;
- text tier: compression at insert (``TextTier.encode``), ``current_bodies``; dictionary
  retraining (``maybe_retrain``: sampling, ``train_dictionary``, the probe compressions),
  re-compression (``_recompress``, ``update_texts``);
- term index (``text`` stores): the entries (``termindex.encode``) and their SQLite write;
- SQLite: record inserts, IVF lists, the commits (``StoreFile.transaction``'s own time);
- refits (fit and re-encoding; a fit made on a thread during the add, ``refit.Refits``, counts
  only where the main thread waits for it), the local index (``index_add``), the progress bar.

    .venv/bin/python benchmarks/ingest_profile.py --json benchmarks/results/ingest_profile_before.json

Only the main thread is timed: zstd work the text tier spreads over threads (``tiers.parallel``:
training the candidate dictionaries and their probe compressions, bodies in large lists) counts in
the stage that waits for it (``text retrain: sample, choose, rest``, ``text: compress``), and the
bodies compressed at insert (``texts_for_tier``, on a thread while the batch is tokenized) in
``rest of add_batch`` as far as the tokenizer did not hide them.

A profile, not a race: the machine is shared, so read shares, and compare runs made back to back.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent.parent / "shared" / "data" / "scifact-train"
if not DATA.exists():
    DATA = ROOT.parent / "shared" / "data" / "scifact-train"
OUT = ROOT / "benchmarks" / "results" / "ingest_profile.json"

OWN: dict[str, float] = defaultdict(float)  # label → seconds, less the wrapped stages it called
CALLS: dict[str, int] = defaultdict(int)
_stack: list[list[float]] = []  # per open timer: [seconds of wrapped calls inside it]
_labels: list[str] = []  # the open timers' labels
SPLIT = {"text: compress"}  # stages reported per caller ("text: compress (in text retrain: …)")


def timed(owner, name: str, label: str) -> None:
    """Wrap ``owner.name`` so that its own time adds up in OWN[label]."""
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        if threading.current_thread() is not threading.main_thread():  # counted in the waiting caller's stage
            return fn(*a, **kw)
        key = f"{label} (in {_labels[-1]})" if label in SPLIT and _labels else label
        _stack.append([0.0])
        _labels.append(label)
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            dt = time.perf_counter() - t
            _labels.pop()
            inner = _stack.pop()[0]
            OWN[key] += dt - inner
            CALLS[key] += 1
            if _stack:
                _stack[-1][0] += dt

    setattr(owner, name, wrapper)


def timed_context(owner, name: str, label: str) -> None:
    """Like ``timed`` for a method returning a context manager: its enter and exit are timed."""
    fn = getattr(owner, name)

    class Timed:
        def __init__(self, cm):
            self.cm = cm

        def __enter__(self):
            _stack.append([0.0])
            t = time.perf_counter()
            try:
                return self.cm.__enter__()
            finally:
                self._close(time.perf_counter() - t)

        def __exit__(self, *exc):
            _stack.append([0.0])
            t = time.perf_counter()
            try:
                return self.cm.__exit__(*exc)
            finally:
                self._close(time.perf_counter() - t)

        @staticmethod
        def _close(dt):
            inner = _stack.pop()[0]
            OWN[label] += dt - inner
            if _stack:
                _stack[-1][0] += dt

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        CALLS[label] += 1
        return Timed(fn(*a, **kw))

    setattr(owner, name, wrapper)


def instrument() -> None:
    import zstandard

    from hashmem.memory import hints, ingest, quantize, refit, termindex
    from hashmem.memory.backends.local import backend, sqlfile, storage
    from hashmem.memory.hashing import Hasher
    from hashmem.memory.store import Memory
    from hashmem.memory.tiers import text

    stages = [  # (owner, function, stage): the pipeline's functions, each timed for its own time
        (ingest, "add_batch", "rest of add_batch (normalize, locks, catch-up)"),
        (ingest, "upkeep", "rest of upkeep"),
        (quantize.Quantizer, "encode", "quantize"),
        (quantize.Quantizer, "decode", "quantize"),
        (quantize, "fit", "quantizer calibration"),
        (Memory, "_embed", "quantizer calibration"),
        (Hasher, "encode", "hash"),
        (hints, "tokenize", "hints: tokenize"),
        (hints, "terms_of", "hints: terms"),
        (hints, "encode", "hints: encode"),
        (hints.Lexicon, "observe", "lexicon: observe"),
        (storage.Storage, "save_lexicon", "lexicon: SQLite write"),
        (text.TextTier, "encode", "text: compress"),
        (ingest, "texts_for_tier", "text: bodies at insert"),
        (text.TextTier, "_adopt", "text retrain: adopt (switch; or the dictionary again: tiers.provisional)"),
        (text.TextTier, "current_bodies", "text: current_bodies"),
        (text.TextTier, "maybe_retrain", "text retrain: sample, choose, rest"),
        (text.TextTier, "_sample", "text retrain: sample stored texts"),
        (zstandard, "train_dictionary", "text retrain: train_dictionary"),
        (text.TextTier, "_recompress", "text retrain: re-compression (decode + rest)"),
        (text.TextTier, "decode", "text: decode"),
        (storage.Storage, "update_texts", "text retrain: SQLite update of bodies"),
        (storage.Storage, "insert", "SQLite: insert records and bodies"),
        (storage.Storage, "set_lists", "SQLite: IVF lists"),
        (termindex, "encode", "term index: encode"),
        (termindex, "encode_all", "term index: encode"),
        (backend.LocalBackend, "store_terms", "term index: SQLite write"),
        (refit, "refit", "refit: fit + re-encode + write"),
        (refit, "_fitted", "refit: fit (in the main thread: in place, or waited for)"),
        (refit, "_write", "refit: re-encode + write"),
        (backend.LocalBackend, "index_add", "local index: add"),
        (backend.LocalBackend, "upkeep", "local index: IVF upkeep"),
    ]
    for owner, name, label in stages:
        timed(owner, name, label)
    timed_context(sqlfile.StoreFile, "transaction", "SQLite: begin/commit")


def workload(n: int) -> tuple[list[str], np.ndarray]:
    """The first n SciFact-train abstracts (title + text) and structured unit embeddings [n, 384] float32."""
    docs = [json.loads(line) for line in open(DATA / "corpus.jsonl", encoding="utf-8")][:n]
    texts = [(d["title"] + "\n" + d["text"]).strip() for d in docs]
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((len(texts), 384)).astype(np.float32)
    emb[1:] += 0.5 * emb[:-1]  # some structure: neighbours share components
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return texts, emb


def profile(fidelity: str, texts: list[str], emb: np.ndarray, *, batch_size: int | None, progress: bool) -> dict:
    from hashmem.memory import Memory

    OWN.clear()
    CALLS.clear()
    with tempfile.TemporaryDirectory() as tmp:
        kw = {"batch_size": batch_size} if batch_size else {}
        with Memory(Path(tmp) / "s.db", fidelity=fidelity, **kw) as mem:
            mem.embedder.encode(["warm up"])  # the model's load is not the add's
            t = time.perf_counter()
            ids = mem.add(texts, embeddings=emb, progress=progress)
            wall = time.perf_counter() - t
            stats = mem.stats()
    stages = dict(sorted(OWN.items(), key=lambda kv: -kv[1]))
    stages["unaccounted (add_passages, validation, …)"] = wall - sum(OWN.values())
    return {
        "fidelity": fidelity, "passages": len(ids), "seconds": wall, "passages_per_s": len(ids) / wall,
        "batch_size": mem.batch_size, "bytes_per_passage": stats.bytes_per_passage,
        "stages_seconds": {k: round(v, 4) for k, v in stages.items()},
        "stages_share": {k: round(v / wall, 4) for k, v in stages.items()},
        "calls": dict(CALLS),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5183, help="passages (the first n of scifact-train)")
    ap.add_argument("--fidelity", nargs="+", default=["hints", "text"], choices=["hints", "text"])
    ap.add_argument("--batch-size", type=int, default=None, help="Memory batch_size (default: the library's)")
    ap.add_argument("--progress", action="store_true", help="draw the progress bar (on stderr), as a terminal user sees it")
    ap.add_argument("--workers", type=int, default=None,
                    help="zstd threads at most (tiers.parallel.WORKERS; 1: all in the calling thread, as before #19's threads)")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    texts, emb = workload(args.n)
    from hashmem.memory.tiers import parallel

    if args.workers:
        parallel.WORKERS = args.workers
    instrument()
    runs = [profile(f, texts, emb, batch_size=args.batch_size, progress=args.progress) for f in args.fidelity]
    out = {"command": " ".join([".venv/bin/python", "benchmarks/ingest_profile.py", *sys.argv[1:]]),
           "data": "scifact-train corpus (title + text), precomputed structured random embeddings",
           "mean_chars": sum(map(len, texts)) / len(texts), "zstd_workers": parallel.WORKERS,
           "load_average": os.getloadavg(), "runs": runs}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    for r in runs:
        print(f"{r['fidelity']}: {r['passages']} passages in {r['seconds']:.1f} s ({r['passages_per_s']:.0f}/s)")
        for k, v in r["stages_seconds"].items():
            print(f"  {v:8.2f} s  {r['stages_share'][k]:6.1%}  {k}")


if __name__ == "__main__":
    main()
