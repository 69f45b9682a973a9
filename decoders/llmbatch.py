"""Several passages through the ``llm`` tier's model at once: ``memory.tiers.llmbatch.BatchTokenModel`` over llama.cpp.

The ``llm`` coder decodes one token per model call; a RAG backend asking for 10
exact hits would wait for 10 passages one after another. This model evaluates N
sequences together: one ``llama_decode`` per step carries the next token of
every sequence still running, so the weights are read once per step instead of
once per passage. Its logits must be bit-identical to ``llmcodec``'s one
sequence at a time, or the bodies would not decode; that holds (a scout on this
llama.cpp, and tests/test_llmbatch.py, compare them bit for bit at 1 and 2
threads) under these conditions, which this module keeps:

- its own llama.cpp context on the single-sequence model's weights, with the
  same context parameters (``N_BATCH``, no flash attention, f16 KV) except
  ``n_seq_max`` = capacity and **separate KV cells per sequence**
  (``kv_unified = False``; ``n_ctx = cells × capacity``). The unified cache
  gives other logits (max |Δ| 1.4–1.9 here);
- ``cells`` per sequence a multiple of 256 (``CELL_BLOCK``), at most ``N_CTX``:
  llama.cpp attends over the used cells padded to 256, not over the context's
  size, so a sequence in 256 cells gets the logits it gets in the single
  model's 2,048 (tests/test_llmbatch.py, benchmarks/llmbatch_exact.py
  ``--fit``). ``batch_model`` sizes them to the longest sequence asked for, so
  a batch of short passages does not hold 2,048 cells (~47 MB) per sequence;
- each sequence's prompt evaluated **on its own** (one ``llama_decode`` per
  prompt, chunked by ``N_BATCH`` like ``Llama.eval``); prompts batched
  together give other logits (max |Δ| 1.3; benchmarks/llmbatch_exact.py);
- after that, exactly one token per sequence per step.

The thread count is re-decided at every ``start_many`` like ``llmcodec``'s
(``threads.pick``, or the single model's fixed count): logits do not depend on it.

What it does not do: code anything (``memory.tiers.llmbatch``), or tokenize
(the single-sequence model does, on the same vocabulary).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import threads as threadpick

MAX_SEQS = 16  # sequences of one context; a larger request runs in groups
CELL_BLOCK = 256  # KV cells per sequence come in blocks of this (llama.cpp's attention padding)


def cells_for(n_tokens: int, max_tokens: int) -> int:
    """KV cells per sequence for sequences of up to n_tokens positions: rounded up to ``CELL_BLOCK``, at most max_tokens."""
    blocks = max(1, -(-int(n_tokens) // CELL_BLOCK))
    return min(blocks * CELL_BLOCK, max_tokens)


class LlamaBatchModel:
    """Up to ``n_seq`` sequences evaluated together, each as ``LlamaTokenModel`` would alone.

    Args:
        single: the single-sequence model whose weights, context parameters and tokenizer are shared.
        n_seq: the capacity (1 … ``MAX_SEQS``).
        cells: KV cells (positions) of each sequence, a multiple of ``CELL_BLOCK``; None: ``N_CTX``.

    Raises:
        ModelLoadError: llama.cpp cannot make the context (e.g. out of memory).
    """

    def __init__(self, single, n_seq: int, cells: int | None = None) -> None:
        from llama_cpp import _internals

        from hashmem.memory import ModelLoadError

        self._llama_cpp = single._llama_cpp
        self.single = single
        self.n_seq = max(1, min(int(n_seq), MAX_SEQS))
        self.n_vocab = single.n_vocab
        self.max_tokens = single.max_tokens  # llmcodec.N_CTX: the most cells a sequence may have
        self.cells = cells_for(cells or self.max_tokens, self.max_tokens)
        self.n_batch = single.llm.n_batch  # llmcodec.N_BATCH: the prompt's chunks, as Llama.eval cuts them
        src = single.llm.context_params
        params = type(src).from_buffer_copy(src)  # the same parameters as the single-sequence context ...
        params.n_ctx = self.cells * self.n_seq  # ... but its own cells for each sequence
        params.n_seq_max = self.n_seq
        params.kv_unified = False  # separate cells per sequence: the unified cache changes the logits
        try:
            self._ctx = _internals.LlamaContext(model=single.llm._model, params=params, verbose=False)
            self._batch = _internals.LlamaBatch(n_tokens=max(self.n_batch, self.n_seq), embd=0, n_seq_max=1,
                                                verbose=False)
        except (ValueError, RuntimeError) as e:
            raise ModelLoadError(f"llama.cpp cannot make a context of {self.n_seq} sequences × {self.cells} cells for "
                                 f"{single.path} ({e})") from e
        self._threads = 0
        self._pos = [0] * self.n_seq
        self._logits = [np.zeros(0, np.float32)] * self.n_seq

    def _set_threads(self) -> None:
        n = self.single.threads or threadpick.pick()
        if n != self._threads:
            self._llama_cpp.llama_set_n_threads(self._ctx.ctx, n, n)
            self._threads = n

    def _put(self, j: int, token: int, pos: int, seq: int, logits: bool) -> None:
        b = self._batch.batch
        b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = int(token), pos, 1, logits
        b.seq_id[j][0] = seq

    def _decode(self, n: int) -> None:
        self._batch.batch.n_tokens = n
        rc = self._llama_cpp.llama_decode(self._ctx.ctx, self._batch.batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def _row(self, j: int) -> np.ndarray:
        ptr = self._llama_cpp.llama_get_logits_ith(self._ctx.ctx, j)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def start_many(self, prompts: Sequence[str]) -> None:
        """Forget everything; evaluate prompt i on sequence i, each on its own (at most ``n_seq`` prompts)."""
        if len(prompts) > self.n_seq:
            raise ValueError(f"{len(prompts)} prompts for a model of {self.n_seq} sequences")
        self._set_threads()
        self._ctx.kv_cache_clear()
        for seq, prompt in enumerate(prompts):
            tokens = self.single.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
            if len(tokens) > self.cells:
                raise RuntimeError(f"a prompt of {len(tokens)} tokens for {self.cells} cells")
            for at in range(0, len(tokens), self.n_batch):  # the chunks of Llama.eval
                chunk = tokens[at : at + self.n_batch]
                for j, t in enumerate(chunk):
                    self._put(j, t, at + j, seq, j == len(chunk) - 1)
                self._decode(len(chunk))
            self._pos[seq] = len(tokens)
            self._logits[seq] = self._row((len(tokens) - 1) % self.n_batch)  # the last chunk's last token

    def feed_many(self, feeds: Sequence[tuple[int, int]]) -> None:
        """Evaluate one more token of each listed sequence: ``(sequence, token)`` pairs, one step."""
        for j, (seq, token) in enumerate(feeds):
            if self._pos[seq] >= self.cells:
                raise RuntimeError(f"sequence {seq} is past its {self.cells} cells")
            self._put(j, token, self._pos[seq], seq, True)
        self._decode(len(feeds))
        for j, (seq, _) in enumerate(feeds):
            self._pos[seq] += 1
            self._logits[seq] = self._row(j)

    def logits(self, seq: int) -> np.ndarray:
        """float32 [n_vocab] logits of sequence ``seq`` after its last evaluated token."""
        return self._logits[seq]

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()


def batch_model(single, n: int, tokens: int | None = None) -> LlamaBatchModel:
    """The batch model of a single-sequence model with room for ``min(n, MAX_SEQS)`` sequences of ``tokens`` positions.

    tokens: the longest sequence (prompt with BOS + passage) to be evaluated; None: ``N_CTX``.
    Made on first use and kept on ``single``; it grows (a new context with the
    larger of the kept and the asked sequences and cells) only when more
    sequences or more cells per sequence are asked for than it holds. Call it
    under ``single.lock``.
    """
    n = max(1, min(int(n), MAX_SEQS))
    cells = cells_for(tokens or single.max_tokens, single.max_tokens)
    have = getattr(single, "_batch_model", None)
    if have is None or have.n_seq < n or have.cells < cells:
        if have is not None:
            n, cells = max(n, have.n_seq), max(cells, have.cells)
            have.close()
        single._batch_model = None
        single._batch_model = LlamaBatchModel(single, n, cells)
    return single._batch_model
