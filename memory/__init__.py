"""hashmem's memory: text → binary codes, int8 vectors and lexical hints → ranked hits.

The front door: ``Memory`` and its result and error types. Importing this
package does not import torch; the embedding model loads on first use.
"""

from importlib import metadata as _metadata

from .config import StoreConfig
from .errors import (
    AddIncompleteError,
    BackendUnavailableError,
    ConfigError,
    HashmemError,
    InputError,
    ModelLoadError,
    ModelMismatchError,
    RecordNotFoundError,
    StoreCorruptError,
    StoreError,
    UpkeepWarning,
)
from .results import ByteBudget, Compacted, Hit, Match, Record, Remembered, StoreStats
from .store import Memory

try:
    __version__ = _metadata.version("hashmem")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "AddIncompleteError",
    "BackendUnavailableError",
    "ByteBudget",
    "Compacted",
    "ConfigError",
    "HashmemError",
    "Hit",
    "InputError",
    "Match",
    "Memory",
    "ModelLoadError",
    "ModelMismatchError",
    "Record",
    "RecordNotFoundError",
    "Remembered",
    "StoreConfig",
    "StoreCorruptError",
    "StoreError",
    "StoreStats",
    "UpkeepWarning",
    "__version__",
]
