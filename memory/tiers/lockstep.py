"""The ``llm`` coder on several passages at once: N arithmetic coders driven in lockstep by one batched model.

Coding one passage costs one model call per token (``llm.encode_one`` /
``llm.decode_one``). When the ``TokenModel`` offers a batch model
(``model.batch(n, tokens)``, a ``BatchTokenModel``: ``hashmem.decoders.llmbatch`` over
llama.cpp, sized to the longest sequence of the request), ``encode_all`` and ``decode_all`` run up to ``n_seq`` passages
together: every passage's prompt first, each on its own sequence, then one step
per token position carrying the next token of every passage still running;
a passage drops out when its last token is coded. The batch model's logits are
bit-identical to the single model's, so a body coded in a batch decodes alone
and the other way round (tests/test_llmbatch.py).

Without a batch model, for one passage, or when a batch fails in the model
(``RuntimeError``), the passages go through the single-passage path one by one.
A passage that cannot be decoded fails alone: ``decode_all`` returns its
``ValueError`` in its place and the others' texts.

Between two steps the model is idle and every running passage needs the
frequency table of its logits (an ``argpartition`` and an ``exp`` over the
whole vocabulary, ~1.5 ms each, numpy releasing the GIL): a group's tables are
made on ``parallel.map_threads``' threads, then the coders are updated in order.
Each table depends only on its logits, so the bodies are the same bytes.

What it does not do: decide what to keep (``llm.LlmTier.encode``: fallbacks,
verification) or evaluate a model (``decoders.llmbatch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..errors import ModelLoadError
from .arith import ArithmeticEncoder, frequency_table
from .llmcode import (
    TokenModel,
    body_of,
    code_token,
    decode_one,
    decode_token,
    encode_one,
    passage_of,
    prepare,
    prompt_for,
    read_body,
)
from .parallel import map_threads


class BatchTokenModel(Protocol):
    """Several sequences evaluated together, each with the logits the single model would give it alone."""

    n_seq: int  # sequences at most

    def start_many(self, prompts: Sequence[str]) -> None:
        """Forget everything and evaluate prompt i on sequence i."""

    def feed_many(self, feeds: Sequence[tuple[int, int]]) -> None:
        """Evaluate one more token of each ``(sequence, token)``."""

    def logits(self, seq: int) -> np.ndarray:
        """float32 [n_vocab] logits of a sequence after its last evaluated token."""


def batch_of(model: TokenModel, ready: list[tuple]) -> BatchTokenModel | None:
    """The model's batch model for the ``(i, prompt, n_tokens, ...)`` passages ready, or None (no batch model,
    fewer than 2, or it cannot be made); it has room for their longest sequence (BOS + prompt + passage)."""
    make = getattr(model, "batch", None)
    if make is None or len(ready) < 2:
        return None
    longest = max(len(model.tokenize(prompt.encode("utf-8"))) + n + 1 for _, prompt, n, *_ in ready)
    try:
        return make(len(ready), longest)
    except (ModelLoadError, ImportError):
        return None


def _groups(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _encode_group(batch: BatchTokenModel, model: TokenModel, group: list[tuple[str, list[int], str]]) -> list[bytes]:
    batch.start_many([prompt for _, _, prompt in group])
    encs = [ArithmeticEncoder() for _ in group]
    longest = max(len(tokens) for _, tokens, _ in group)
    for step in range(longest):
        running = [s for s, (_, tokens, _) in enumerate(group) if step < len(tokens)]
        feeds = []
        for s, table in zip(running, map_threads(frequency_table, [batch.logits(s) for s in running]), strict=True):
            tokens = group[s][1]
            code_token(encs[s], table, tokens[step], model.n_vocab)
            if step + 1 < len(tokens):  # no logits are needed after a passage's last token
                feeds.append((s, tokens[step]))
        if feeds:
            batch.feed_many(feeds)
    return [body_of(text, len(tokens), enc) for (text, tokens, _), enc in zip(group, encs, strict=True)]


def encode_all(model: TokenModel, texts: Sequence[str], hints: Sequence[Sequence[str]]) -> list[bytes | None]:
    """The LLM body of each passage (None: it cannot be coded exactly, see ``llm.prepare``), batched when possible."""
    out: list[bytes | None] = [None] * len(texts)
    ready = []
    for i, (text, h) in enumerate(zip(texts, hints, strict=True)):
        prepared = prepare(model, text, h)
        if prepared is not None:
            ready.append((i, text, *prepared))
    batch = batch_of(model, [(i, prompt, len(tokens)) for i, _, tokens, prompt in ready])
    for group in _groups(ready, batch.n_seq if batch else 1):
        if batch is not None and len(group) > 1:
            try:
                for (i, *_), body in zip(group, _encode_group(batch, model, [g[1:] for g in group]), strict=True):
                    out[i] = body
                continue
            except RuntimeError:
                pass  # the model failed on the batch: code its passages one by one
        for i, text, _, _ in group:
            try:
                out[i] = encode_one(model, text, hints[i])
            except (ValueError, RuntimeError):
                out[i] = None
    return out


def _decode_group(batch: BatchTokenModel, model: TokenModel, group: list[tuple]) -> list[str | ValueError]:
    """group: ``(prompt, n, check, decoder)`` per body."""
    batch.start_many([g[0] for g in group])
    tokens: list[list[int]] = [[] for _ in group]
    for step in range(max(g[1] for g in group)):
        running = [s for s, (_, n, _, _) in enumerate(group) if step < n]
        feeds = []
        for s, table in zip(running, map_threads(frequency_table, [batch.logits(s) for s in running]), strict=True):
            _, n, _, dec = group[s]
            tokens[s].append(decode_token(dec, table, model.n_vocab))
            if step + 1 < n:
                feeds.append((s, tokens[s][-1]))
        if feeds:
            batch.feed_many(feeds)
    out: list[str | ValueError] = []
    for (_, _, check, _), toks in zip(group, tokens, strict=True):
        try:
            out.append(passage_of(model, toks, check))
        except ValueError as e:
            out.append(e)
    return out


def decode_all(model: TokenModel, bodies: Sequence[bytes], hints: Sequence[Sequence[str]]) -> list[str | ValueError]:
    """The passage of each LLM body, or the ``ValueError`` that body fails with; batched when possible."""
    out: list[str | ValueError] = [ValueError("not decoded")] * len(bodies)
    ready = []
    for i, (body, h) in enumerate(zip(bodies, hints, strict=True)):
        prompt = prompt_for(h)
        try:
            ready.append((i, prompt, *read_body(model, body, prompt)))
        except ValueError as e:
            out[i] = e
    batch = batch_of(model, ready)
    for group in _groups(ready, batch.n_seq if batch else 1):
        if batch is not None and len(group) > 1:
            try:
                for (i, *_), got in zip(group, _decode_group(batch, model, [g[1:] for g in group]), strict=True):
                    out[i] = got
                continue
            except RuntimeError:
                pass  # the model failed on the batch: decode its bodies one by one
        for i, *_ in group:
            try:
                out[i] = decode_one(model, bodies[i], hints[i])
            except ValueError as e:
                out[i] = e
    return out
