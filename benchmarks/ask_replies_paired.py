"""``ask`` (extract) with its candidates scored together (``decoders.replies``) against one at a time, paired (#19 item 2).

Before ``replies``, an extract question evaluated its whole prompt in the question
model's own context (``llm.reset(); llm.eval(prompt)``) and scored each
shortlisted candidate with its own ``llama_decode`` from the cached prompt (the
end-of-turn token included). Now the prompt's head (the system message) stays
evaluated, the rest is evaluated after it, and all candidates go through one
batch on sequences sharing the prompt's cells. This runs both on the same
questions, in one process, one after the other per question (the order
alternating), on the store ``hashmem eval-ask`` builds (LoCoMo-style data, text
store, k hits), and reports each path's p50 / p90 of ``ask``'s wall time, the
median of the per-question ratios (new ÷ old), and how many answers differ.

    .venv/bin/python benchmarks/ask_replies_paired.py ../shared/data/locomo --limit 50 \\
        [--json benchmarks/results/ask_replies_paired_locomo50.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def one_at_a_time(dec_cls):
    """``LlamaDecoder``'s two scoring methods as they were before ``replies`` (d74c453)."""
    from hashmem.decoders import chat

    def first(self, prompt):
        self.llm.reset()
        self.llm.eval(prompt)
        return chat.log_softmax(chat.last_logits(self.llm).astype(np.float64))

    def reply(llm, n_prompt, tokens, first_lp):
        import llama_cpp

        seq = list(tokens)[: llm.n_batch - 1] + [chat.end_of_turn(llm)]
        ctx, batch = llm._ctx, llm._batch
        ctx.kv_cache_seq_rm(-1, n_prompt, -1)
        b = batch.batch
        b.n_tokens = len(seq)
        for j, t in enumerate(seq):
            b.token[j], b.pos[j], b.seq_id[j][0], b.n_seq_id[j], b.logits[j] = t, n_prompt + j, 0, 1, True
        ctx.decode(batch)
        rows = np.ctypeslib.as_array(llama_cpp.llama_get_logits(ctx.ctx), shape=(len(seq), llm.n_vocab()))
        lp = float(first_lp[seq[0]]) + sum(
            float(chat.log_softmax(rows[j].astype(np.float64))[seq[j + 1]]) for j in range(len(seq) - 1))
        ctx.kv_cache_seq_rm(-1, n_prompt, -1)
        llm.n_tokens = n_prompt
        return lp

    def replies(self, cands, first_lp):
        n_prompt = self.llm.n_tokens
        return [reply(self.llm, n_prompt, c, first_lp) for c in cands]

    return type("OneAtATime", (dec_cls,), {"first_token_logprobs": first, "reply_logprobs": replies})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from hashmem.decoders import llama
    from hashmem.evaluation.ask import _day, load, pick
    from hashmem.memory import Memory

    turns, questions = load(args.dataset)
    chosen = pick(questions, args.limit)
    convs = {q["conv"] for q in chosen}
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "ask.db", fidelity="text") as mem:
        for conv in sorted(convs):
            mine = [t for t in turns if t.get("conv", t["_id"].split(":")[0]) == conv]
            mem.add([f"({_day(t['date_time'])}) {t['text']}" if t.get("date_time") else t["text"] for t in mine],
                     namespace=conv, progress=False)
        new = llama.LlamaDecoder(mem, threads=args.threads)
        old = one_at_a_time(llama.LlamaDecoder)(mem, threads=args.threads)
        q0 = chosen[0]
        for dec in (new, old):  # warm up: load, make the scorer's context
            dec.ask(q0["text"], mem.search(q0["text"], args.k, namespace=q0["conv"]))
        ms = {"new": [], "old": []}
        differ = 0
        for i, q in enumerate(chosen):
            hits = mem.search(q["text"], args.k, namespace=q["conv"])
            got = {}
            for name in (("new", "old") if i % 2 == 0 else ("old", "new")):
                dec = new if name == "new" else old
                t = time.perf_counter()
                got[name] = dec.ask(q["text"], hits).text
                ms[name].append((time.perf_counter() - t) * 1000)
            differ += got["new"] != got["old"]
    ratios = [a / b for a, b in zip(ms["new"], ms["old"], strict=True)]
    out = {
        "command": f"benchmarks/ask_replies_paired.py {args.dataset} --limit {args.limit} -k {args.k} "
                   f"--threads {args.threads}",
        "questions": len(chosen),
        "p50_ms": {n: round(float(np.percentile(v, 50)), 1) for n, v in ms.items()},
        "p90_ms": {n: round(float(np.percentile(v, 90)), 1) for n, v in ms.items()},
        "median_ratio_new_over_old": round(statistics.median(ratios), 3),
        "answers_differ": differ,
        "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
