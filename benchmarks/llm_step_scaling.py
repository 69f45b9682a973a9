"""What one token costs in a multi-sequence step of the ``llm`` tier's model, by the number of sequences (#19 item 3).

``recall_many`` decodes N bodies together: one ``llama_decode`` per step carries
one token of each of the N sequences (``decoders.llmbatch``). It can only be
N× faster than N single recalls if a step of N tokens costs about what a step
of one token costs, that is if the model is bound by reading its weights. This
measures the step's time per token for N = 1, 2, 4, 10, 16 at 1 and 2 threads,
next to the single-sequence context's ``feed`` (``decoders.llmcodec``), after
the same prompt, on the ``llm`` tier's model (SmolLM2-135M, Q4_1), and the
prompt evaluation's time per token (one batch of the whole prompt) for comparison.

The bound it gives: recall of N bodies of T tokens costs at least
``T × step(N)`` against ``N × T × feed`` for N single recalls, so the ratio
cannot go below ``step(N) / (N × feed)`` — before any prompt or Python work.

    .venv/bin/python benchmarks/llm_step_scaling.py [--steps 40] [--requantize Q8_0] \\
        [--json benchmarks/results/llm_step_scaling.json]

With ``--requantize Q8_0`` the same rows for the same weights at 8 bits (``recall_many.requantize``):
the prompt row is what ``ask`` pays per token of its prompt, so it tells what such a model would
save there too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # recall_many.requantize
PROMPT = "Keywords: honeybees waggle dance hive direction flowers\nText:\n"
TEXT = sorted((ROOT / "examples" / "texts").glob("*.txt"))


def tokens_of(model) -> list[int]:
    text = " ".join(p.read_text(encoding="utf-8") for p in TEXT)
    return model.tokenize(text.encode("utf-8"))


def per_token_ms(fn, steps: int, tokens_per_step: int, repeats: int = 3) -> float:
    """Median over repeats of the ms per token of ``steps`` calls of fn(step)."""
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(steps):
            fn(i)
        out.append((time.perf_counter() - t) * 1000 / (steps * tokens_per_step))
    return statistics.median(out)


def measure(model, steps: int) -> dict:
    """One model's row: a single ``feed``, a 256-token prompt (median of 3), a step of N sequences, per token."""
    from hashmem.decoders.llmbatch import LlamaBatchModel

    toks = tokens_of(model)
    row: dict = {}

    def feed_one(i: int) -> None:
        model.feed(toks[i])

    model.start(PROMPT)
    row["single feed"] = per_token_ms(feed_one, steps, 1)
    long_prompt = model.detokenize(toks[:256]).decode("utf-8", errors="ignore")
    row["prompt of 256 tokens, per token"] = per_token_ms(lambda _: model.start(long_prompt), 1, 256)
    for n in (1, 2, 4, 10, 16):
        batch = LlamaBatchModel(model, n)
        try:
            batch.start_many([PROMPT] * n)

            def step(i: int, batch=batch, n=n) -> None:
                batch.feed_many([(s, toks[i]) for s in range(n)])

            row[f"step of {n}, per token"] = per_token_ms(step, steps, n)
        finally:
            batch.close()
    row["bound on recall of 10 / 10 single recalls"] = row["step of 10, per token"] / row["single feed"]
    row["bound on recall of 16 / 16 single recalls"] = row["step of 16, per token"] / row["single feed"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="steps timed per measurement")
    ap.add_argument("--requantize", metavar="TYPE", default="",
                    help="also measure the packaged weights requantized to TYPE (e.g. Q8_0: llama.cpp's tiled "
                         "kernels for several tokens at once take it, not Q4_1), interleaved by thread count")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "llm_step_scaling.json")
    args = ap.parse_args()

    from hashmem.decoders.llmcodec import token_model

    paths = {"packaged": None}  # None: the llm tier's model (the package's Q4_1)
    tmp = tempfile.TemporaryDirectory()
    if args.requantize:
        from recall_many import requantize

        paths[args.requantize] = requantize(token_model().path, args.requantize,
                                            Path(tmp.name) / f"requantized.{args.requantize}.gguf")
    results: dict = {"load_average_start": [round(x, 2) for x in os.getloadavg()], "threads": {}}
    for threads in (1, 2):
        for label, path in paths.items():
            model = token_model(path, threads=threads)
            row = measure(model, args.steps)
            key = str(threads) if len(paths) == 1 else f"{threads} {label}"
            results["threads"][key] = {k: round(v, 3) for k, v in row.items()}
            print(f"{threads} thread(s), {model.path.name}:", json.dumps(results["threads"][key], indent=1))
    results.update(model=str(token_model().path.name), models={k: (v.name if v else token_model().path.name)
                                                                 for k, v in paths.items()},
                   machine=platform.processor() or platform.machine(),
                   cpus=os.cpu_count(), load_average_end=[round(x, 2) for x in os.getloadavg()],
                   command="benchmarks/llm_step_scaling.py " + f"--steps {args.steps}"
                           + (f" --requantize {args.requantize}" if args.requantize else ""))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
