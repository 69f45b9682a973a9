"""llm tier add and recall with one core busy and with both idle, for 2 fixed llama.cpp threads and the adaptive choice (#22).

Four cases in one run: {idle, busy} × {fixed (2 threads, the count before
#22), adaptive (``decoders.threads.pick`` per passage)}; "busy" is another
process spinning on one core (``while True: pass``) for the whole case. Each
case runs in a child process (models loaded and warmed up before any timing)
that makes a new ``llm`` store, adds N SciFact passages of 50–70 words one at a
time (embedding, coding, the verification decode, the commit) and then recalls
each (``Memory.get``: the body decoded back to the exact text). Reported per
passage: mean and p50 seconds, the thread counts used, exactness, and whether
the bodies are the bytes of the idle fixed case; ratios busy ÷ idle per
choice and adaptive ÷ fixed on the idle machine.

Time is bounded: a case stops starting passages after ``--budget`` seconds per
phase (2 fixed threads on a busy core have taken minutes per passage) and is
killed after ``2 × budget + 120`` s; what it measured is reported (``measured``
counts the passages). The machine is shared with other work: ``os.getloadavg()``
before each case goes in the JSON, and "idle" means no spinner of ours, not a
quiet machine.

    .venv/bin/python benchmarks/llm_threads.py [--passages 10] [--budget 150] \
        [--json benchmarks/results/llm_threads.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "scifact-train"
CASES = [("idle", "fixed"), ("idle", "adaptive"), ("busy", "adaptive"), ("busy", "fixed")]
FIXED_THREADS = 2
SETUP_S = 120  # child start, model loads and warm-up, on top of the two phases' budgets


def passages(n: int, data: Path = DATA) -> list[str]:
    """The first n SciFact passages (memory.chunk, ~60 words) of 50–70 words."""
    from hashmem.evaluation.recall import PASSAGE_TOKENS, iter_documents
    from hashmem.memory.chunk import chunk_text

    out: list[str] = []
    for doc in iter_documents(data):
        out += [p.text for p in chunk_text(doc, tokens=PASSAGE_TOKENS) if 50 <= len(p.text.split()) <= 70]
        if len(out) >= n:
            return out[:n]
    raise SystemExit(f"{data} has only {len(out)} passages of 50–70 words; ask for fewer")


# -- one case, in a child process ----------------------------------------------------------


def run_case(choice: str, n: int, budget: float) -> None:
    """Add then recall n passages; one JSON line per passage on stdout."""
    from hashmem.decoders.llmcodec import LlamaTokenModel
    from hashmem.memory import Memory
    from hashmem.memory.tiers.llm import LLM_TAG

    texts = passages(n)
    model = LlamaTokenModel(threads=FIXED_THREADS if choice == "fixed" else None)

    def emit(**row) -> None:
        print(json.dumps(row), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        with Memory(Path(tmp) / "warm.db", fidelity="llm", token_model=model) as mem:
            mem.get(mem.add(["Warm up the embedder and the model."])[0])
        emit(phase="ready")
        with Memory(Path(tmp) / "case.db", fidelity="llm", token_model=model) as mem:
            ids, started = [], time.perf_counter()
            for i, text in enumerate(texts):
                if time.perf_counter() - started > budget:
                    break
                t0 = time.perf_counter()
                (rid,) = mem.add([text])
                dt = time.perf_counter() - t0
                body = mem.storage.fetch_texts([rid])[rid]
                ids.append(rid)
                emit(phase="add", i=i, s=dt, threads=model.threads_now, coded=body[0] == LLM_TAG, body=body.hex())
            started = time.perf_counter()
            for i, rid in enumerate(ids):
                if time.perf_counter() - started > budget:
                    break
                t0 = time.perf_counter()
                text = mem.get(rid).text
                emit(phase="recall", i=i, s=time.perf_counter() - t0, threads=model.threads_now,
                     exact=text == texts[i])


# -- the parent: spinner, child, limits, summary --------------------------------------------


def measure(load: str, choice: str, n: int, budget: float) -> dict:
    """Run one case in a child (with a spinner when busy); its rows, cut at the hard limit."""
    env = {k: v for k, v in os.environ.items() if k != "HASHMEM_LLM_THREADS"}  # adaptive means the picker
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
    loadavg = os.getloadavg()
    rows: list[dict] = []
    killed = False
    child = subprocess.Popen([sys.executable, __file__, "--case", choice, "--passages", str(n),
                              "--budget", str(budget)], stdout=subprocess.PIPE, text=True, env=env)

    def read() -> None:
        for line in child.stdout:
            if line.strip():
                rows.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        child.wait(timeout=2 * budget + SETUP_S)
    except subprocess.TimeoutExpired:
        child.kill()
        killed = True
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        reader.join()
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return {"load": load, "choice": choice, "loadavg_before": [round(x, 2) for x in loadavg],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()], "killed_at_limit": killed, "child_exit": child.returncode, "rows": rows}


def summarize(case: dict, n: int, reference: dict[int, str] | None) -> dict:
    """Per-phase seconds per passage, thread counts, exactness, bodies against the idle fixed case."""
    out = {k: case[k] for k in ("load", "choice", "loadavg_before", "loadavg_after", "killed_at_limit",
                                "child_exit")}
    for phase in ("add", "recall"):
        rows = [r for r in case["rows"] if r["phase"] == phase]
        s = [r["s"] for r in rows]
        out[phase] = {"measured": len(rows), "of": n,
                      "s_per_passage_mean": round(float(np.mean(s)), 3) if s else None,
                      "s_per_passage_p50": round(float(np.median(s)), 3) if s else None,
                      "threads_used": dict(sorted(Counter(r["threads"] for r in rows).items()))}
    adds = [r for r in case["rows"] if r["phase"] == "add"]
    recalls = [r for r in case["rows"] if r["phase"] == "recall"]
    out["llm_coded"] = sum(r["coded"] for r in adds)
    out["exact"] = f"{sum(r['exact'] for r in recalls)}/{len(recalls)}"
    if reference is not None:
        both = [r for r in adds if r["i"] in reference]
        out["bodies_same_as_idle_fixed"] = f"{sum(r['body'] == reference[r['i']] for r in both)}/{len(both)}"
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=10)
    ap.add_argument("--budget", type=float, default=150.0, help="seconds per phase per case (soft)")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "llm_threads.json")
    ap.add_argument("--cases", default=",".join(f"{a}/{b}" for a, b in CASES),
                    help="comma-separated LOAD/CHOICE cases, in order (default: all four)")
    ap.add_argument("--case", choices=["fixed", "adaptive"], help=argparse.SUPPRESS)  # the child's mode
    args = ap.parse_args()
    if args.passages < 1 or args.budget <= 0:
        ap.error("--passages must be at least 1 and --budget positive")
    chosen = [tuple(c.strip().split("/")) for c in args.cases.split(",") if c.strip()]
    if not chosen or any(c not in CASES for c in chosen):
        ap.error(f"--cases takes {', '.join(f'{a}/{b}' for a, b in CASES)}, got {args.cases!r}")
    if args.case:
        run_case(args.case, args.passages, args.budget)
        return
    started = time.time()
    raw = {f"{load}/{choice}": measure(load, choice, args.passages, args.budget) for load, choice in chosen}
    ref = {r["i"]: r["body"] for r in raw.get("idle/fixed", {"rows": []})["rows"] if r["phase"] == "add"}
    cases = {k: summarize(c, args.passages, None if k == "idle/fixed" else ref) for k, c in raw.items()}
    mean = lambda k, phase: cases[k][phase]["s_per_passage_mean"] if k in cases else None  # noqa: E731
    ratios = {}
    for phase in ("add", "recall"):
        ratios[phase] = {
            "fixed busy / fixed idle": _ratio(mean("busy/fixed", phase), mean("idle/fixed", phase)),
            "adaptive busy / adaptive idle": _ratio(mean("busy/adaptive", phase), mean("idle/adaptive", phase)),
            "adaptive busy / fixed idle": _ratio(mean("busy/adaptive", phase), mean("idle/fixed", phase)),
            "adaptive idle / fixed idle": _ratio(mean("idle/adaptive", phase), mean("idle/fixed", phase)),
        }
    result = {
        "command": "python benchmarks/llm_threads.py " + " ".join(sys.argv[1:]),
        "passages": args.passages, "budget_s_per_phase": args.budget, "fixed_threads": FIXED_THREADS,
        "usable_cpus": len(os.sched_getaffinity(0)), "seconds": round(time.time() - started, 1),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "targets": {"busy / idle per passage, add and recall": "<= 2", "adaptive idle / fixed idle": "<= 1.05",
                    "exact": "100 %"},
        "ratios": ratios, "cases": cases,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"ratios": ratios, **{k: {p: c[p] for p in ("add", "recall", "exact", "loadavg_before")}
                                           for k, c in cases.items()}}, indent=1))


if __name__ == "__main__":
    main()
