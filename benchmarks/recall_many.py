"""llm tier: recall of k hits at once and add of a batch, through the multi-sequence batch against one passage at a time (#19 item 3).

One run, one process, the model loaded and warmed up before any timing:

- **add**: the same N SciFact passages (50–70 words) added to a new ``llm``
  store, batched (``lockstep``: the N passages coded together, then verified
  together) and through today's per-passage path (the same model with its batch
  model hidden), interleaved, the order alternating per round; reported: seconds
  per passage (the whole ``Memory.add``: embedding, coding, verification decode,
  commit), medians over rounds, and whether both stores hold the same bodies.
- **recall**: the N records of one store read back with ``Memory.recall_many``
  against N ``Memory.get`` calls, interleaved, the order alternating per round;
  reported: seconds for the N, medians, and whether the texts are exact.

With ``--requantize Q8_0`` every way also runs on the same weights requantized
to Q8_0 (llama.cpp's tiled kernels for several tokens at once take Q8_0, not
the package's Q4_1), interleaved with the packaged model's, and the bytes per
passage of both are reported.

The ratios (batched ÷ one at a time) are the figures; the machine may be shared:
``os.getloadavg()`` before and after each phase goes in the JSON. Targets (#19):
recall of 10 ≤ 0.5 × ten gets, add ≤ 0.6 × per passage, on a quiet machine.

    .venv/bin/python benchmarks/recall_many.py [--passages 10] [--rounds 3] [--add-rounds 2] \\
        [--requantize Q8_0] [--json benchmarks/results/recall_many.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from llm_threads import passages  # benchmarks/ is the script's directory

ROOT = Path(__file__).resolve().parents[1]


class OneAtATime:
    """The token model with its batch model hidden: today's per-passage path (same bodies, same fingerprint)."""

    def __init__(self, model) -> None:
        self._model = model

    def __getattr__(self, name: str):
        if name == "batch":
            raise AttributeError(name)
        return getattr(self._model, name)


def requantize(src: Path, ftype: str, dst: Path) -> Path:
    """The packaged GGUF's weights requantized to ftype (e.g. Q8_0) by llama.cpp (``llama_model_quantize``), at dst.

    From Q4_1 to Q8_0 the weights are nearly unchanged (8 bits hold a 4-bit
    block's values and scale to within rounding) and the output is the same
    bytes at 1 and 2 threads. A store coded with it is another store: the
    model's SHA-256 is part of every body's fingerprint.
    """
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype.upper()}")
    params.allow_requantize = True
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise SystemExit(f"llama_model_quantize to {ftype} failed ({rc})")
    return dst


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="recall rounds (each: recall_many and N gets)")
    ap.add_argument("--add-rounds", type=int, default=2, help="add rounds (each: a batched and a per-passage store)")
    ap.add_argument("--requantize", metavar="TYPE", default="",
                    help="also run every way with the packaged weights requantized to TYPE (e.g. Q8_0), interleaved; "
                         "its ratios are given against the packaged model's one-at-a-time times and its own")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "recall_many.json")
    args = ap.parse_args()

    from hashmem.decoders.llmcodec import LlamaTokenModel
    from hashmem.memory import Memory

    texts = passages(args.passages)
    out: dict = {"command": "benchmarks/recall_many.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "json" and v),
        "passages": len(texts), "threads": "adaptive (threads.pick per passage / batch)",
        "cpus": os.cpu_count(), "machine": platform.machine()}
    with tempfile.TemporaryDirectory() as tmp:
        models = {"": LlamaTokenModel()}  # the packaged GGUF: today's model
        if args.requantize:
            models["_" + args.requantize.lower()] = LlamaTokenModel(requantize(
                models[""].path, args.requantize, Path(tmp) / f"requantized.{args.requantize}.gguf"))
        out["models"] = {k or "packaged": m.path.name for k, m in models.items()}
        out["tokens"] = [len(models[""].tokenize(t.encode())) for t in texts]
        ways = {f"{how}{m}": model if how == "batched" else OneAtATime(model)
                for m, model in models.items() for how in ("batched", "one_at_a_time")}
        for m, model in models.items():
            with Memory(Path(tmp) / f"warm{m}.db", fidelity="llm", token_model=model) as mem:  # embedder, contexts
                ids = mem.add(["Warm up the embedder.", "And the model, two passages at once."])
                mem.recall_many(ids)

        # -- add -------------------------------------------------------------------------------------
        add: dict[str, list[float]] = {way: [] for way in ways}
        bodies = {}
        out["add_load_before"] = load()
        for r in range(args.add_rounds):
            for way in list(ways) if r % 2 == 0 else list(ways)[::-1]:
                path = Path(tmp) / f"add-{way}-{r}.db"
                with Memory(path, fidelity="llm", token_model=ways[way]) as mem:
                    started = time.perf_counter()
                    ids = mem.add(texts)
                    add[way].append((time.perf_counter() - started) / len(texts))
                    got = mem.storage.fetch_texts(ids)
                    bodies[way] = [got[i] for i in ids]
                    coded = mem._llm().last_stats.coded
                print(f"add round {r} {way}: {add[way][-1]:.2f} s/passage ({coded} coded)", flush=True)
        out["add_load_after"] = load()
        out["add_s_per_passage"] = {k: [round(x, 3) for x in v] for k, v in add.items()}
        med = {k: statistics.median(v) for k, v in add.items()}
        out["add_median_s_per_passage"] = {k: round(v, 3) for k, v in med.items()}
        for m in models:
            out[f"add_ratio_batched{m}_to_one_at_a_time"] = round(med[f"batched{m}"] / med["one_at_a_time"], 3)
            out[f"add_same_bodies{m}"] = bodies[f"batched{m}"] == bodies[f"one_at_a_time{m}"]
        out["text_bytes_per_passage"] = round(sum(len(t.encode()) for t in texts) / len(texts), 1)
        out["llm_bytes_per_passage"] = {way: round(sum(map(len, b)) / len(b), 1) for way, b in bodies.items()}

        # -- recall ----------------------------------------------------------------------------------
        rec: dict[str, list[float]] = {}
        exact = True
        out["recall_load_before"] = load()
        mems = {m: Memory(Path(tmp) / f"add-batched{m}-0.db", token_model=model) for m, model in models.items()}
        try:
            for r in range(args.rounds):
                for m in list(models) if r % 2 == 0 else list(models)[::-1]:
                    mem, ids = mems[m], mems[m].ids()
                    for how in ["recall_many", "gets"] if r % 2 == 0 else ["gets", "recall_many"]:
                        started = time.perf_counter()
                        got = mem.recall_many(ids) if how == "recall_many" else [mem.get(i) for i in ids]
                        rec.setdefault(how + m, []).append(time.perf_counter() - started)
                        exact &= [g.text for g in got] == texts
                    print(f"recall round {r}{m}: recall_many {rec['recall_many' + m][-1]:.2f} s, "
                          f"{len(ids)} gets {rec['gets' + m][-1]:.2f} s", flush=True)
        finally:
            for mem in mems.values():
                mem.close()
        out["recall_load_after"] = load()
        out["recall_s"] = {k: [round(x, 3) for x in v] for k, v in rec.items()}
        med = {k: statistics.median(v) for k, v in rec.items()}
        out["recall_median_s"] = {k: round(v, 3) for k, v in med.items()}
        for m in models:
            out[f"recall_ratio_many{m}_to_gets"] = round(med["recall_many" + m] / med["gets"], 3)
            if m:
                out[f"recall_ratio_many{m}_to_gets{m}"] = round(med["recall_many" + m] / med["gets" + m], 3)
                out[f"add_ratio_batched{m}_to_one_at_a_time{m}"] = round(
                    out["add_median_s_per_passage"][f"batched{m}"]
                    / out["add_median_s_per_passage"][f"one_at_a_time{m}"], 3)
        out["recall_exact"] = exact
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if "ratio" in k or "same" in k or "exact" in k or "load" in k}))


if __name__ == "__main__":
    main()
