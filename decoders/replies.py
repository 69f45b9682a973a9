"""Candidate replies to one prompt, scored together: a llama.cpp context whose sequences share the prompt.

An ``extract`` question is answered by the model's log-probability of each
candidate span as the whole reply (``llama.LlamaDecoder._extract_draft``). One at
a time, each candidate is a ``llama_decode`` of 2–10 tokens, and on 2 cores a
small batch costs about twice a large one per token (Q4_1 weights: no GEMM
kernel, benchmarks/llm_step_scaling.py). Here the prompt is evaluated once on
sequence 0, every candidate gets the prompt's cells (``llama_memory_seq_cp``:
the cells are shared, not copied, in a unified KV cache) and a sequence of its
own, and all candidates' tokens go through one batch.

The prompt's head (``keep`` tokens: the system message, the same for every
question) stays evaluated between questions. It is always evaluated on its own,
in its own ``llama_decode``, and the rest of the prompt after it; every other
cell is freed before a prompt, so the cells' layout, and so a question's
scores, do not depend on the questions asked before (tests/test_decoders.py).
Within a question, a candidate's score depends slightly on its place in the
batch (its cells lie further on: the attention sums in another order, a few
hundredths of a nat, like one batch against token by token). Nothing else
uses this context.

The context is the question model's (same weights, same parameters) with
``n_seq_max`` = ``MAX_REPLIES`` + 1 and a unified KV cache; it is made on first
use and kept on the ``Llama`` (~50 MB of KV cells for 2,048 tokens).

What it does not do: choose candidates or weigh the scores (``llama``, ``spans``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import chat

MAX_REPLIES = 16  # sequences of candidates in one batch (more run in further batches)


class ReplyScorer:
    """Log-probabilities of candidate replies to one prompt, every candidate in one batch.

    Args:
        llm: the loaded ``llama_cpp.Llama`` whose weights and context parameters are used.

    Raises:
        RuntimeError: llama.cpp cannot make the context or evaluate a batch.
    """

    def __init__(self, llm) -> None:
        from llama_cpp import _internals

        self.llm = llm
        src = llm.context_params
        params = type(src).from_buffer_copy(src)
        params.n_seq_max = MAX_REPLIES + 1
        params.kv_unified = True  # one pool of cells: the candidates' sequences share the prompt's
        self.n_batch = int(params.n_batch)
        self.n_ctx = int(params.n_ctx)
        try:
            self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
            self._batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise RuntimeError(f"llama.cpp cannot make a context for scoring replies ({e})") from e
        self._threads = 0
        self._head: tuple[int, ...] = ()  # tokens whose cells sequence 0 keeps between prompts
        self._n_prompt = 0
        self._eot = chat.end_of_turn(llm)

    def _decode(self, items: Sequence[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of ``(token, position, sequence, logits)`` items."""
        b = self._batch.batch
        for j, (token, pos, seq, logits) in enumerate(items):
            b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = token, pos, 1, logits
            b.seq_id[j][0] = seq
        b.n_tokens = len(items)
        self._ctx.decode(self._batch)

    def _rows(self, n: int) -> np.ndarray:
        import llama_cpp

        ptr = llama_cpp.llama_get_logits(self._ctx.ctx)
        return np.ctypeslib.as_array(ptr, shape=(n, self.llm.n_vocab())).astype(np.float64)

    def _eval(self, tokens: Sequence[int], start: int) -> None:
        """Tokens at positions start… on sequence 0, in chunks of ``n_batch``; logits of the last one."""
        for at in range(0, len(tokens), self.n_batch):
            chunk = tokens[at : at + self.n_batch]
            last = at + len(chunk) == len(tokens)
            self._decode([(t, start + at + j, 0, last and j == len(chunk) - 1) for j, t in enumerate(chunk)])

    def first(self, prompt: Sequence[int], keep: int = 0) -> np.ndarray:
        """Evaluate a prompt (its first ``keep`` tokens a head kept between prompts); the log-probabilities
        [n_vocab] of the reply's first token."""
        if len(prompt) + 2 > self.n_ctx:
            raise RuntimeError(f"a prompt of {len(prompt)} tokens does not fit {self.n_ctx}")
        n = self.llm.n_threads
        if n != self._threads:
            self._ctx.set_n_threads(n, n)
            self._threads = n
        keep = keep if 0 < keep < len(prompt) else 0
        head = tuple(prompt[:keep])
        if keep and head == self._head:
            for seq in range(1, MAX_REPLIES + 1):
                self._ctx.kv_cache_seq_rm(seq, -1, -1)
            self._ctx.kv_cache_seq_rm(0, keep, -1)
        else:
            self._ctx.kv_cache_clear()
            self._head = ()
            if keep:
                self._eval(head, 0)
                self._head = head
        self._eval(list(prompt[keep:]), keep)
        self._n_prompt = len(prompt)
        return chat.log_softmax(self._rows(1)[0])

    def replies(self, replies: Sequence[Sequence[int]], first: np.ndarray) -> list[float]:
        """Log-probability of each reply's tokens, then the end of the turn, as the whole reply to the prompt
        just evaluated (``first``: what ``first`` returned); replies run ``MAX_REPLIES`` to a batch."""
        seqs = [list(r)[: max(1, self.n_batch // MAX_REPLIES - 1)] + [self._eot] for r in replies]
        out: list[float] = []
        for g in range(0, len(seqs), MAX_REPLIES):
            group = seqs[g : g + MAX_REPLIES]
            items = []
            for s, seq in enumerate(group, 1):
                self._ctx.kv_cache_seq_rm(s, -1, -1)
                self._ctx.kv_cache_seq_cp(0, s, 0, self._n_prompt)
                items += [(t, self._n_prompt + j, s, True) for j, t in enumerate(seq[:-1])]  # not the end:
                # its probability is read at the reply's last token, and nothing follows it
            self._decode(items)
            rows = self._rows(sum(len(seq) - 1 for seq in group))
            r = 0
            for seq in group:
                lp = float(first[seq[0]])
                for j in range(len(seq) - 1):
                    lp += float(chat.log_softmax(rows[r])[seq[j + 1]])
                    r += 1
                out.append(lp)
        return out

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()


def scorer(llm) -> ReplyScorer:
    """The reply scorer of a loaded model, made on first use and kept on it."""
    have = getattr(llm, "_hashmem_replies", None)
    if have is None:
        have = llm._hashmem_replies = ReplyScorer(llm)
    return have
