"""The ``llm`` tier's coder: the body of one passage under a ``TokenModel``, token by token.

Both directions run the same evaluation sequence (reset, the prompt in one
call, then the passage one token at a time) so that encoder and decoder see
bit-identical logits; ``lockstep`` drives N of these coders together over a
batch model. The format of a body, the frequency table and the determinism
argument are described in ``llm``; the bit-level arithmetic is ``arith``'s.

What it does not do: keep bodies, fall back, or verify (``llm.LlmTier``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .arith import (
    TOTAL_BITS,
    ArithmeticDecoder,
    ArithmeticEncoder,
    check16,
    frequency_table,
    read_varint,
    varint,
)

LLM_TAG = 255


class TokenModel(Protocol):
    """What the coder needs of a language model.

    ``start`` and ``feed`` must evaluate in a fixed way (same batching) so that
    the same calls give bit-identical ``logits``.
    """

    n_vocab: int
    max_tokens: int  # prompt + passage tokens the model can hold

    def fingerprint(self) -> dict:
        """``{"model_sha256", "model_file", "runtime", "threads"}`` of this model."""

    def tokenize(self, data: bytes) -> list[int]:
        """Token ids of data (no BOS, no special tokens)."""

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        """The bytes of tokens."""

    def start(self, prompt: str) -> None:
        """Forget everything and evaluate the prompt."""

    def feed(self, token: int) -> None:
        """Evaluate one more token."""

    def logits(self) -> np.ndarray:
        """float32 [n_vocab] logits after the last evaluated token."""


def prompt_for(hints: Sequence[str]) -> str:
    """The conditioning text of a passage: its hints in passage order."""
    return "Keywords: " + " ".join(hints) + "\nText:\n"


# -- the codec ------------------------------------------------------------------------------


def prepare(model: TokenModel, text: str, hints: Sequence[str]) -> tuple[list[int], str] | None:
    """A passage's tokens and prompt; None when the tokenizer does not give its bytes back or it does not fit."""
    data = text.encode("utf-8")
    tokens = model.tokenize(data)
    if model.detokenize(tokens) != data:
        return None
    prompt = prompt_for(hints)
    if len(model.tokenize(prompt.encode("utf-8"))) + len(tokens) + 2 > model.max_tokens:
        return None
    return tokens, prompt


def code_token(enc: ArithmeticEncoder, table: tuple[np.ndarray, np.ndarray], t: int, n_vocab: int) -> None:
    """Code token t under a ``frequency_table`` of the logits (its own range, or the escape and then t uniformly)."""
    total = 1 << TOTAL_BITS
    top, cum = table
    hit = np.flatnonzero(top == t)
    if hit.size:
        i = int(hit[0])
        enc.update(int(cum[i]), int(cum[i + 1]), total)
    else:
        k = len(top)
        enc.update(int(cum[k]), total, total)  # escape, then the id uniformly
        enc.update(t, t + 1, n_vocab)


def decode_token(dec: ArithmeticDecoder, table: tuple[np.ndarray, np.ndarray], n_vocab: int) -> int:
    """The token ``code_token`` coded under the same ``frequency_table``."""
    total = 1 << TOTAL_BITS
    top, cum = table
    k = len(top)
    v = dec.target(total)
    i = int(np.searchsorted(cum, v, side="right")) - 1
    if i < k:
        dec.update(int(cum[i]), int(cum[i + 1]), total)
        return int(top[i])
    dec.update(int(cum[k]), total, total)
    t = dec.target(n_vocab)
    dec.update(t, t + 1, n_vocab)
    return t


def body_of(text: str, n_tokens: int, enc: ArithmeticEncoder) -> bytes:
    """The LLM body of a passage whose n_tokens tokens enc has coded."""
    return bytes([LLM_TAG]) + varint(n_tokens) + check16(text.encode("utf-8")) + enc.finish()


def read_body(model: TokenModel, body: bytes, prompt: str) -> tuple[int, bytes, ArithmeticDecoder]:
    """``(token count, check, decoder)`` of an LLM body whose passage is to be decoded after prompt.

    Raises:
        ValueError: not an LLM body, a truncated one, or one whose token count does not fit the context.
    """
    body = bytes(body)
    if not body or body[0] != LLM_TAG:
        raise ValueError("not an LLM-coded body")
    n, pos = read_varint(body, 1)
    if pos + 2 > len(body):
        raise ValueError("a truncated body")
    if len(model.tokenize(prompt.encode("utf-8"))) + n > model.max_tokens:  # damaged: never run past the context
        raise ValueError(f"a token count ({n}) beyond the model's context")
    return n, body[pos : pos + 2], ArithmeticDecoder(body[pos + 2 :])


def passage_of(model: TokenModel, tokens: Sequence[int], check: bytes) -> str:
    """The decoded passage of tokens; ValueError when it fails its check or is not UTF-8."""
    data = model.detokenize(tokens)
    if check16(data) != check:
        raise ValueError("the decoded passage fails its check")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"the decoded passage is not UTF-8 ({e})") from e


def encode_one(model: TokenModel, text: str, hints: Sequence[str]) -> bytes | None:
    """The LLM body of one passage, or None when it cannot be coded exactly (``prepare``).

    The caller still verifies the body by decoding.
    """
    prepared = prepare(model, text, hints)
    if prepared is None:
        return None
    tokens, prompt = prepared
    enc = ArithmeticEncoder()
    model.start(prompt)
    for i_tok, t in enumerate(tokens):
        code_token(enc, frequency_table(model.logits()), t, model.n_vocab)
        if i_tok + 1 < len(tokens):  # the decoder needs no logits after the last token
            model.feed(t)
    return body_of(text, len(tokens), enc)


def decode_one(model: TokenModel, body: bytes, hints: Sequence[str]) -> str:
    """The passage coded in an LLM body.

    Raises:
        ValueError: the body is damaged, or decodes to bytes whose check does not
            match (another model or runtime computed other probabilities).
    """
    prompt = prompt_for(hints)
    n, check, dec = read_body(model, body, prompt)
    model.start(prompt)
    tokens: list[int] = []
    for _ in range(n):
        tokens.append(decode_token(dec, frequency_table(model.logits()), model.n_vocab))
        if len(tokens) < n:
            model.feed(tokens[-1])
    return passage_of(model, tokens, check)
