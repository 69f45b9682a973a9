"""Where a store lives decides its backend: ``open_backend(location)``, a ``milvus://`` URI or a file path."""

from __future__ import annotations

from .base import Backend
from .local.backend import LocalBackend

MILVUS_SCHEME = "milvus://"


def is_milvus_uri(location) -> bool:
    """True for a ``milvus://`` (or ``milvus+tls://``) store location."""
    return isinstance(location, str) and location.lower().startswith(("milvus://", "milvus+tls://"))


def open_backend(location, *, create: bool, readonly: bool = False, durable: bool = False) -> Backend:
    """The backend for a store location: a ``milvus://`` URI, else a local file path.

    Raises:
        ConfigError: a malformed ``milvus://`` URI.
        StoreError: the store cannot be opened (or the server cannot be reached).
    """
    if is_milvus_uri(location):
        from .milvus.backend import MilvusBackend

        return MilvusBackend(location, create=create, readonly=readonly)
    return LocalBackend(location, create=create, readonly=readonly, durable=durable)
