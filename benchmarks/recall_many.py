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

The ratios (batched ÷ one at a time) are the figures; the machine may be shared:
``os.getloadavg()`` before and after each phase goes in the JSON. Targets (#19):
recall of 10 ≤ 0.5 × ten gets, add ≤ 0.6 × per passage, on a quiet machine.

    .venv/bin/python benchmarks/recall_many.py [--passages 10] [--rounds 3] [--add-rounds 2] \\
        [--json benchmarks/results/recall_many.json]
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


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="recall rounds (each: recall_many and N gets)")
    ap.add_argument("--add-rounds", type=int, default=2, help="add rounds (each: a batched and a per-passage store)")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "recall_many.json")
    args = ap.parse_args()

    from hashmem.decoders.llmcodec import LlamaTokenModel
    from hashmem.memory import Memory

    texts = passages(args.passages)
    model = LlamaTokenModel()
    single = OneAtATime(model)
    out: dict = {"command": "benchmarks/recall_many.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "json"),
        "passages": len(texts), "tokens": [len(model.tokenize(t.encode())) for t in texts],
        "threads": "adaptive (threads.pick per passage / batch)", "cpus": os.cpu_count(),
        "machine": platform.machine()}
    with tempfile.TemporaryDirectory() as tmp:
        with Memory(Path(tmp) / "warm.db", fidelity="llm", token_model=model) as mem:  # embedder, both contexts
            ids = mem.add(["Warm up the embedder.", "And the model, two passages at once."])
            mem.recall_many(ids)

        # -- add -------------------------------------------------------------------------------------
        add = {"batched": [], "one_at_a_time": []}
        bodies = {}
        out["add_load_before"] = load()
        for r in range(args.add_rounds):
            order = ["batched", "one_at_a_time"] if r % 2 == 0 else ["one_at_a_time", "batched"]
            for how in order:
                path = Path(tmp) / f"add-{how}-{r}.db"
                with Memory(path, fidelity="llm", token_model=model if how == "batched" else single) as mem:
                    started = time.perf_counter()
                    ids = mem.add(texts)
                    add[how].append((time.perf_counter() - started) / len(texts))
                    bodies[how] = mem.storage.fetch_texts(ids)
                    bodies[how] = [bodies[how][i] for i in ids]
                    coded = mem._llm().last_stats.coded
                print(f"add round {r} {how}: {add[how][-1]:.2f} s/passage ({coded} coded)", flush=True)
        out["add_load_after"] = load()
        out["add_s_per_passage"] = {k: [round(x, 3) for x in v] for k, v in add.items()}
        med = {k: statistics.median(v) for k, v in add.items()}
        out["add_median_s_per_passage"] = {k: round(v, 3) for k, v in med.items()}
        out["add_ratio_batched_to_one_at_a_time"] = round(med["batched"] / med["one_at_a_time"], 3)
        out["add_same_bodies"] = bodies["batched"] == bodies["one_at_a_time"]

        # -- recall ----------------------------------------------------------------------------------
        rec = {"recall_many": [], "gets": []}
        exact = True
        out["recall_load_before"] = load()
        with Memory(Path(tmp) / "add-batched-0.db", token_model=model) as mem:
            ids = mem.ids()
            for r in range(args.rounds):
                order = ["recall_many", "gets"] if r % 2 == 0 else ["gets", "recall_many"]
                for how in order:
                    started = time.perf_counter()
                    got = mem.recall_many(ids) if how == "recall_many" else [mem.get(i) for i in ids]
                    rec[how].append(time.perf_counter() - started)
                    exact &= [g.text for g in got] == texts
                print(f"recall round {r}: recall_many {rec['recall_many'][-1]:.2f} s, "
                      f"{len(ids)} gets {rec['gets'][-1]:.2f} s", flush=True)
        out["recall_load_after"] = load()
        out["recall_s"] = {k: [round(x, 3) for x in v] for k, v in rec.items()}
        med = {k: statistics.median(v) for k, v in rec.items()}
        out["recall_median_s"] = {k: round(v, 3) for k, v in med.items()}
        out["recall_ratio_many_to_gets"] = round(med["recall_many"] / med["gets"], 3)
        out["recall_exact"] = exact
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("add_ratio_batched_to_one_at_a_time", "recall_ratio_many_to_gets",
                                          "add_same_bodies", "recall_exact", "add_load_before",
                                          "recall_load_before")}))


if __name__ == "__main__":
    main()
