"""The ``llm`` fidelity tier: passages arithmetic-coded under a language model, conditioned on their hints.

An ``llm``-tier store keeps each passage's exact UTF-8 bytes like the ``text``
tier, but codes them with an arithmetic coder whose probabilities are a local
language model's next-token predictions, the model having first read the
passage's own hints (which the store keeps anyway): the hints give the model
the gist, the bits carry only what it could not guess.

This module holds the body format and the tier; the coder of one passage is
``llmcode``'s, of several at once ``lockstep``'s, and the arithmetic coder, the
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

from ..errors import ModelLoadError, ModelMismatchError, StoreCorruptError
from .arith import TOP_K, TOTAL_BITS
from .llmcode import LLM_TAG as LLM_TAG
from .llmcode import TokenModel as TokenModel
from .llmcode import decode_one as decode_one
from .llmcode import encode_one as encode_one
from .llmcode import prompt_for as prompt_for
from .lockstep import decode_all, encode_all

META_KEY = "llm_codec"
CODER_VERSION = 1
PROMPT_VERSION = 1
PARAMS = {"coder": CODER_VERSION, "top_k": TOP_K, "total_bits": TOTAL_BITS, "prompt": PROMPT_VERSION}


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
        model = self.model()
        with getattr(model, "lock", self._lock):
            got = decode_all(model, bodies, hints)
        fp = model.fingerprint()
        return [g if isinstance(g, str) else StoreCorruptError(
            f"{self.storage.path}: an LLM-coded passage cannot be decoded here ({g}); the model file "
            f"matches, so the runtime ({fp.get('runtime')}, threads {fp.get('threads')}) computes "
            "other probabilities than the one that wrote it, or the body or its hints are damaged")
            for g in got]
