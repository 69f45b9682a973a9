"""hashmem: a retrieval memory that keeps passages as binary codes, int8 vectors and lexical hints.

The one import name. Its subpackages live in the repository's top-level
folders and are installed under this package:

- ``hashmem.memory``: text → codes, int8 vectors and hints → ranked hits (no LLM);
- ``hashmem.decoders``: codes and hints back to text, answers from recalled memories;
- ``hashmem.cli``: the ``hashmem`` command.

This module re-exports the front door of ``hashmem.memory`` (``from hashmem
import Memory``) and ``open_decoder``. Importing it does not import torch or
llama_cpp; models load on first use.
"""

from hashmem.decoders import open_decoder
from hashmem.memory import (
    ConfigError,
    HashmemError,
    Hit,
    InputError,
    Memory,
    ModelLoadError,
    ModelMismatchError,
    Record,
    RecordNotFoundError,
    StoreConfig,
    StoreCorruptError,
    StoreError,
    StoreStats,
    __version__,
)

__all__ = [
    "ConfigError",
    "HashmemError",
    "Hit",
    "InputError",
    "Memory",
    "ModelLoadError",
    "ModelMismatchError",
    "Record",
    "RecordNotFoundError",
    "StoreConfig",
    "StoreCorruptError",
    "StoreError",
    "StoreStats",
    "__version__",
    "open_decoder",
]
