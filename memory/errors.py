"""Exception types raised by the memory library.

Every error says what was expected, what came in, and the likely fix. The
library never prints; the CLI turns these into one-line messages.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager


class HashmemError(Exception):
    """Base class of every error hashmem raises on purpose."""


class ConfigError(HashmemError, ValueError):
    """A setting is out of range or inconsistent (bits, method, hint budget, k...)."""


class InputError(HashmemError, ValueError):
    """Input text or a file cannot be ingested (empty, binary, invalid UTF-8...)."""


class ModelMismatchError(HashmemError):
    """The store was built with another embedding model than the one requested."""


class ModelLoadError(HashmemError):
    """An embedding or decoder model could not be found or loaded."""


class StoreError(HashmemError):
    """The store file cannot be opened, read or written."""


class StoreCorruptError(StoreError):
    """The store file is not a hashmem store, or fails its integrity check."""


class RecordNotFoundError(HashmemError, KeyError):
    """No record has the requested id."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message plain
        return str(self.args[0]) if self.args else "record not found"


class BackendUnavailableError(StoreError):
    """The storage engine (a Milvus server) cannot be reached or failed a call; nothing is lost
    that it acknowledged. Retry when it is back."""


class AddIncompleteError(StoreError):
    """An add stored only part of its passages.

    Attributes:
        stored_ids: ids of the passages stored and acknowledged (in input order).
        failed_ids: ids given to passages whose write was not acknowledged (a remote
            backend assigns ids before writing; empty when the backend assigns them on commit).
            They were removed where the engine could still be reached, so they are absent.
        failed: how many passages were not stored.
    """

    def __init__(self, message: str, *, stored_ids=(), failed_ids=(), failed: int = 0) -> None:
        super().__init__(message)
        self.stored_ids = list(stored_ids)
        self.failed_ids = list(failed_ids)
        self.failed = failed


class UpkeepWarning(UserWarning):
    """Upkeep after a committed batch (a hasher refit, IVF lists, a text dictionary) failed.

    The batch's passages are stored and acknowledged; the upkeep is tried again on a later
    add, since what made it due still holds."""


@contextmanager
def reading_stored(what: str) -> Iterator[None]:
    """Decode bytes read from a store: a failure means the file is damaged (StoreCorruptError naming ``what``)."""
    try:
        yield
    except HashmemError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise StoreCorruptError(f"{what} cannot be read ({type(e).__name__}: {str(e)[:200]}): the store file is "
                                "damaged; restore it from a backup") from e
