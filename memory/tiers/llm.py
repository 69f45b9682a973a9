"""The ``llm`` fidelity tier: passages arithmetic-coded under a language model, conditioned on their hints.

An ``llm``-tier store keeps each passage's exact UTF-8 bytes like the ``text``
tier, but codes them with an arithmetic coder whose probabilities are a local
language model's next-token predictions, the model having first read the
passage's own hints (which the store keeps anyway): the hints give the model
the gist, the bits carry only what it could not guess.

This module holds the body format and the tier; the arithmetic coder, the
frequency table and the header fields are ``arith``'s. It knows nothing of
llama.cpp. The model comes in through the small ``TokenModel`` interface,
implemented over llama-cpp-python in ``hashmem.decoders.llmcodec`` and handed to
``Memory(token_model=...)`` (or registered as the default with
``set_default_model``, which importing ``hashmem`` does). So ``memory`` never
imports ``decoders``, and a store opened without a model still searches; only
reading or writing an ``llm`` body needs it.

Determinism (the crux). Encoder and decoder must see bit-identical
probabilities, so both run the *same evaluation sequence*: reset, the prompt in
one batch, then the passage one token at a time (the ``TokenModel`` is
responsible for that; llama.cpp's logits do not depend on its thread count,
which may differ between encoding and decoding). Logits become integer
frequencies deterministically (``arith.frequency_table``): the ``TOP_K`` most
likely tokens (ties broken by token id) get ``1 + floor(p · (TOTAL − K − 1))``,
and an escape symbol the rest, after which the token id is coded uniformly. A body also carries 16 bits of the
passage's CRC-32, so a decode under a model or a runtime that computes other
probabilities is detected and reported, never returned as garbage.

Never lose a passage: ``encode`` tokenizes each passage and requires
``detokenize(tokenize(bytes)) == bytes`` (else the passage is not coded), then
decodes every body it made and compares with the input; a passage that does
not round-trip, does not fit the context, or is not smaller than its ``text``
body keeps the ``text`` body (a zstd frame). The first byte of every body says
which (``LLM_TAG`` or a ``texttier`` tag).

Body layout of an LLM-coded passage::

    byte 0       LLM_TAG (255)
    varint       number of passage tokens (LEB128, 7 bits per byte)
    2 bytes      crc32(passage bytes) & 0xFFFF, big-endian
    rest         the arithmetic code, bits MSB-first, trailing zero bytes dropped

Store meta ``llm_codec``: JSON of the coder parameters (``PARAMS``) and the
model's fingerprint (``model_sha256``, ``model_file``, ``runtime``, ``threads``:
a count in older stores, ``"auto"`` since the count is chosen per passage),
written when the store is created. A model whose file hash differs is refused
(``ModelMismatchError``); another runtime version or thread count is allowed,
every body being checked by its CRC.

What it does not do: choose which stores use it (``config.fidelity``), load a
model (``decoders.llmcodec``), or train the zstd dictionary of the fallback
bodies (``texttier``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import ModelLoadError, ModelMismatchError, StoreCorruptError
from .arith import (
    TOP_K,
    TOTAL_BITS,
    ArithmeticDecoder,
    ArithmeticEncoder,
    check16,
    frequency_table,
    read_varint,
    varint,
)

LLM_TAG = 255
META_KEY = "llm_codec"
CODER_VERSION = 1
PROMPT_VERSION = 1
PARAMS = {"coder": CODER_VERSION, "top_k": TOP_K, "total_bits": TOTAL_BITS, "prompt": PROMPT_VERSION}


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


def code_token(enc: ArithmeticEncoder, logits: np.ndarray, t: int, n_vocab: int) -> None:
    """Code token t under the frequencies of logits (its own range, or the escape and then t uniformly)."""
    total = 1 << TOTAL_BITS
    top, cum = frequency_table(logits)
    hit = np.flatnonzero(top == t)
    if hit.size:
        i = int(hit[0])
        enc.update(int(cum[i]), int(cum[i + 1]), total)
    else:
        k = len(top)
        enc.update(int(cum[k]), total, total)  # escape, then the id uniformly
        enc.update(t, t + 1, n_vocab)


def decode_token(dec: ArithmeticDecoder, logits: np.ndarray, n_vocab: int) -> int:
    """The token ``code_token`` coded under the frequencies of logits."""
    total = 1 << TOTAL_BITS
    top, cum = frequency_table(logits)
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
        code_token(enc, model.logits(), t, model.n_vocab)
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
        tokens.append(decode_token(dec, model.logits(), model.n_vocab))
        if len(tokens) < n:
            model.feed(tokens[-1])
    return passage_of(model, tokens, check)


@dataclass
class EncodeStats:
    """What ``LlmTier.encode`` did with a batch (for evaluation).

    Attributes:
        coded: passages kept as LLM bodies.
        fallback: passages kept as ``text`` bodies, by reason (``tokenizer``,
            ``context``, ``mismatch``, ``no_gain``).
        decode_ms: wall time of each verification decode, in ms.
    """

    coded: int = 0
    fallback: dict | None = None
    decode_ms: list | None = None

    def __post_init__(self) -> None:
        self.fallback = self.fallback or {}
        self.decode_ms = self.decode_ms or []


ModelFactory = Callable[[], TokenModel]
_default_factory: ModelFactory | None = None


def set_default_model(factory: ModelFactory | None) -> None:
    """Register how to make the TokenModel of stores opened without one (``hashmem.decoders`` does)."""
    global _default_factory
    _default_factory = factory


class LlmTier:
    """Codes and decodes the LLM bodies of one store.

    Args:
        storage: the store's Storage (for the ``llm_codec`` meta record).
        model: a TokenModel, or a factory called on first use; None: the registered default.
    """

    def __init__(self, storage, model: TokenModel | ModelFactory | None = None) -> None:
        self.storage = storage
        self._model_arg = model
        self._model: TokenModel | None = None
        self._lock = threading.RLock()
        self.last_stats = EncodeStats()

    def model(self) -> TokenModel:
        """The TokenModel, checked once against the model the store was coded with."""
        with self._lock:
            if self._model is None:
                arg = self._model_arg if self._model_arg is not None else _default_factory
                if arg is None:
                    raise ModelLoadError(
                        f"{self.storage.path} keeps passages coded under a language model (fidelity llm); "
                        "open it with `import hashmem` (which registers the llama.cpp model) or pass "
                        "Memory(..., token_model=...)")
                model = arg() if callable(arg) and not hasattr(arg, "tokenize") else arg
                self._check(model)
                self._model = model
            return self._model

    def _check(self, model: TokenModel) -> None:
        if getattr(self.storage, "is_new", False):
            return  # being created: describe() records this very model
        raw = self.storage.get_meta(META_KEY)
        if raw is None:
            return  # written by record() when the store is created
        stored = json.loads(raw)
        have = model.fingerprint()  # "threads" is not compared: bodies do not depend on it
        if stored.get("params") != PARAMS:
            raise StoreCorruptError(
                f"{self.storage.path} was coded with LLM coder parameters {stored.get('params')}, this "
                f"hashmem has {PARAMS}; read it with the hashmem version that wrote it")
        if stored.get("model_sha256") != have["model_sha256"]:
            raise ModelMismatchError(
                f"{self.storage.path} keeps passages coded under the model {stored.get('model_file')} "
                f"(sha256 {str(stored.get('model_sha256'))[:12]}…); the model here is {have['model_file']} "
                f"(sha256 {have['model_sha256'][:12]}…). Give that exact GGUF file (e.g. $HASHMEM_GGUF)")

    def describe(self) -> str:
        """The ``llm_codec`` meta value of a new store: coder parameters and the model's fingerprint (JSON)."""
        return json.dumps({"params": PARAMS, **self.model().fingerprint()}, sort_keys=True)

    def record(self, conn) -> None:
        """Write ``describe()`` into a store (inside conn)."""
        self.storage.set_meta(conn, META_KEY, self.describe())

    def encode(self, texts: Sequence[str], hints: Sequence[Sequence[str]], fallbacks: Sequence[bytes],
               *, verify: bool = True) -> list[bytes]:
        """The body of each passage: an LLM body when it round-trips and pays, else its fallback.

        The passages are coded together, and verified together, when the model
        has a batch model (``lockstep``); the bodies are the same bytes either way.

        Args:
            texts: the passages.
            hints: each passage's stored hint strings (the decoder will see the same).
            fallbacks: each passage's ``text``-tier body.
            verify: decode every LLM body and compare (leave on; off only for tests of the check).

        Returns:
            One body per passage; ``last_stats`` tells what happened (a batch's
            verification time is shared evenly among its bodies in ``decode_ms``).
        """
        import time

        from .lockstep import decode_all, encode_all

        model = self.model()
        stats = EncodeStats()
        with getattr(model, "lock", self._lock):  # one model may serve several stores
            bodies = encode_all(model, texts, hints)
            why: list[str | None] = [None] * len(texts)
            for i, (text, body, fb) in enumerate(zip(texts, bodies, fallbacks, strict=True)):
                if body is None:
                    data = text.encode("utf-8")
                    why[i] = "tokenizer" if model.detokenize(model.tokenize(data)) != data else "context"
                elif len(body) >= len(fb):
                    why[i] = "no_gain"
            check = [i for i in range(len(texts)) if why[i] is None] if verify else []
            if check:
                started = time.perf_counter()
                decoded = decode_all(model, [bodies[i] for i in check], [hints[i] for i in check])
                stats.decode_ms += [(time.perf_counter() - started) * 1000 / len(check)] * len(check)
                for i, text in zip(check, decoded, strict=True):
                    if text != texts[i]:
                        why[i] = "mismatch"
        out = []
        for body, fb, reason in zip(bodies, fallbacks, why, strict=True):
            if reason is None:
                stats.coded += 1
                out.append(body)
            else:
                stats.fallback[reason] = stats.fallback.get(reason, 0) + 1
                out.append(bytes(fb))
        self.last_stats = stats
        return out

    def decode(self, body: bytes, hints: Sequence[str]) -> str:
        """The exact passage of an LLM body.

        Raises:
            StoreCorruptError: the body does not decode to a passage that passes its check.
            ModelMismatchError / ModelLoadError: no model, or not the store's model.
        """
        got = self.decode_many([body], [hints])[0]
        if isinstance(got, StoreCorruptError):
            raise got
        return got

    def decode_many(self, bodies: Sequence[bytes], hints: Sequence[Sequence[str]]) -> list[str | StoreCorruptError]:
        """The exact passage of each LLM body, decoded together (``lockstep``), or the error of that body alone.

        Raises:
            ModelMismatchError / ModelLoadError: no model, or not the store's model.
        """
        from .lockstep import decode_all

        model = self.model()
        with getattr(model, "lock", self._lock):
            got = decode_all(model, bodies, hints)
        fp = model.fingerprint()
        return [g if isinstance(g, str) else StoreCorruptError(
            f"{self.storage.path}: an LLM-coded passage cannot be decoded here ({g}); the model file "
            f"matches, so the runtime ({fp.get('runtime')}, threads {fp.get('threads')}) computes "
            "other probabilities than the one that wrote it, or the body or its hints are damaged")
            for g in got]
