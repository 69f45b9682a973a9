"""Are llama.cpp's multi-sequence batch logits bit-identical to one sequence at a time? (#19 item 3, the premise of ``lockstep``)

For the first 10 SciFact passages of 50–70 words (cut to ``--max-tokens`` minus
0–15 tokens, so sequences drop out at different steps) the single-sequence
model (``llmcodec.LlamaTokenModel``) gives the logits after the prompt and after
each passage token but the last; then N passages go through one multi-sequence
context (one ``llama_decode`` per step carrying one token of each running
sequence) and every row is compared bit for bit. Configurations: separate KV
cells per sequence and each prompt evaluated on its own (what
``decoders.llmbatch`` does), the unified KV cache, and all prompts in one batch.
``--fit``: each sequence gets the cells ``llmbatch.batch_model`` gives it (the
longest prompt + passage rounded up to 256) instead of ``N_CTX``; ``--join k``
makes each passage k SciFact passages joined (k=4: ~350 tokens, two blocks of
cells); ``--separate-only`` runs only ``llmbatch``'s configuration.

    .venv/bin/python benchmarks/llmbatch_exact.py --threads 1 [--max-tokens 48] [--fit] [--join 1] \\
        [--separate-only] [--json benchmarks/results/llmbatch_exact_t1.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
from llm_threads import passages  # benchmarks/ is the script's directory

ROOT = Path(__file__).resolve().parents[1]
CASES = [(4, False, False), (8, False, False), (10, False, False), (10, True, False), (10, False, True), (4, True, False)]


def single_logits(m, text: str, hints: list[str], max_tokens: int):
    from hashmem.memory.tiers.llm import prompt_for

    toks = m.tokenize(text.encode())[: max_tokens - random.Random(text).randrange(0, 16)]
    m.start(prompt_for(hints))
    rows = [m.logits().copy()]
    for t in toks[:-1]:
        m.feed(t)
        rows.append(m.logits().copy())
    return np.stack(rows), toks


def batch_logits(single, prompts, toklists, threads: int, unified: bool, joint: bool, cells: int):
    import llama_cpp as L
    from llama_cpp import _internals

    n = len(prompts)
    cp = type(single.llm.context_params).from_buffer_copy(single.llm.context_params)
    cp.n_ctx, cp.n_seq_max, cp.kv_unified = cells * n, n, unified
    cp.n_threads = cp.n_threads_batch = threads
    ctx = _internals.LlamaContext(model=single.llm._model, params=cp, verbose=False)
    batch = _internals.LlamaBatch(n_tokens=max(512, n), embd=0, n_seq_max=1, verbose=False)
    b, nv = batch.batch, single.n_vocab
    out = [[] for _ in range(n)]
    ptoks = [single.llm.tokenize(p.encode(), add_bos=True, special=False) for p in prompts]

    def put(j, tok, pos, seq, logits):
        b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = tok, pos, 1, logits
        b.seq_id[j][0] = seq

    def row(j):
        return np.ctypeslib.as_array(L.llama_get_logits_ith(ctx.ctx, j), shape=(nv,)).copy()

    started = time.perf_counter()
    groups = [list(range(n))] if joint else [[s] for s in range(n)]
    for group in groups:  # all prompts in one batch, or one batch per prompt
        j, last = 0, {}
        for s in group:
            for k, tok in enumerate(ptoks[s]):
                put(j, tok, k, s, k == len(ptoks[s]) - 1)
                j += 1
            last[s] = j - 1
        b.n_tokens = j
        assert L.llama_decode(ctx.ctx, b) == 0
        for s in group:
            out[s].append(row(last[s]))
    step = 0
    while active := [s for s in range(n) if step < len(toklists[s]) - 1]:
        for j, s in enumerate(active):
            put(j, toklists[s][step], len(ptoks[s]) + step, s, True)
        b.n_tokens = len(active)
        assert L.llama_decode(ctx.ctx, b) == 0
        for j, s in enumerate(active):
            out[s].append(row(j))
        step += 1
    seconds = time.perf_counter() - started
    batch.close()
    ctx.close()
    return [np.stack(o) for o in out], seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--fit", action="store_true", help="cells per sequence as llmbatch sizes them, not N_CTX")
    ap.add_argument("--join", type=int, default=1, help="SciFact passages joined into each passage")
    ap.add_argument("--separate-only", action="store_true", help="only llmbatch's configuration")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from hashmem.decoders.llmbatch import cells_for
    from hashmem.decoders.llmcodec import LlamaTokenModel
    from hashmem.memory.tiers.llm import prompt_for

    pieces = passages(10 * args.join)
    texts = [" ".join(pieces[i : i + args.join]) for i in range(0, len(pieces), args.join)]
    hints = [t.split()[:6] for t in texts]  # a stand-in conditioning, the same both ways
    m = LlamaTokenModel(threads=args.threads)
    rows: list[dict] = [{"load_before": [round(x, 2) for x in os.getloadavg()]}]
    singles = [single_logits(m, t, h, args.max_tokens) for t, h in zip(texts, hints, strict=True)]
    rows[0]["tokens"] = [len(s[1]) for s in singles]
    for n, unified, joint in [c for c in CASES if not (args.separate_only and (c[1] or c[2]))]:
        prompts = [prompt_for(h) for h in hints[:n]]
        longest = max(len(m.tokenize(p.encode())) + len(s[1]) + 1 for p, s in zip(prompts, singles, strict=False))
        cells = cells_for(longest, m.max_tokens) if args.fit else m.max_tokens
        got, seconds = batch_logits(m, prompts, [s[1] for s in singles[:n]], args.threads, unified, joint, cells)
        row = {"threads": args.threads, "n": n, "unified_kv": unified, "joint_prompts": joint,
               "cells_per_seq": cells, "longest_seq": longest,
               "identical": all(np.array_equal(g, s[0]) for g, s in zip(got, singles[:n], strict=True)),
               "max_abs_diff": max(float(np.max(np.abs(g - s[0]))) for g, s in zip(got, singles[:n], strict=True)),
               "batch_s": round(seconds, 2)}
        print(row, flush=True)
        rows.append(row)
    rows.append({"load_after": [round(x, 2) for x in os.getloadavg()]})
    out = args.json or ROOT / "benchmarks" / "results" / f"llmbatch_exact_t{args.threads}.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
