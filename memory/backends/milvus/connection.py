"""The connection to a Milvus server: one pymilvus client, a timeout on every remote call, errors in one line.

``connect`` builds the client from ``uri.parse_uri``'s settings (TLS, a private CA,
credentials from the URI or ``$HASHMEM_MILVUS_TOKEN``) and wraps it so that every remote
call carries ``timeout`` (``$HASHMEM_MILVUS_TIMEOUT``, default ``DEFAULT_TIMEOUT`` seconds).
``errors`` turns every pymilvus or gRPC error into a ``BackendUnavailableError`` (a
``StoreError``) with a one-line message and no secrets. ``READ`` and ``STRONG`` are the
consistency levels the backend reads at (see ``backend``'s docstring for which call uses which).

What it does not do: parse the URI (``uri``), create or read collections (``schema``,
``settings``, ``backend``) or retry: a failed call is reported, not repeated.
"""

from __future__ import annotations

import contextlib
import logging

from ...errors import BackendUnavailableError, ConfigError, StoreError

TIMEOUT_ENV = "HASHMEM_MILVUS_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
READ = "Session"  # see the backend's module docstring
STRONG = "Strong"


class _QuietIterator(logging.Filter):
    """Drop pymilvus's warning that a 2.3 server gives query iterators no MVCC timestamp (it then
    uses the client's clock, which is what Session consistency reads at anyway)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


_QUIET = _QuietIterator()
_ITERATOR_LOG = "pymilvus.client.iterator.query_iterator"


class _Deadline:
    """The client with ``timeout`` on every remote call: pymilvus retries an unreachable server
    for minutes (75 tries) unless a call carries a timeout, which bounds the retries too."""

    _REMOTE = frozenset({"insert", "upsert", "delete", "query", "search", "query_iterator", "has_collection",
                         "load_collection", "create_collection", "create_index", "create_partition",
                         "list_partitions", "describe_collection", "drop_collection"})

    def __init__(self, client, timeout: float) -> None:
        self._client, self._timeout = client, timeout

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name not in self._REMOTE:
            return attr

        def call(*args, **kwargs):
            kwargs.setdefault("timeout", self._timeout)
            return attr(*args, **kwargs)

        return call


def require_pymilvus() -> None:
    """Raise ConfigError when pymilvus is missing; quiet its query iterators' clock warning.

    Raises:
        ConfigError: pymilvus is not installed (naming the extra that installs it).
    """
    try:
        from pymilvus import MilvusClient  # noqa: F401 - checked here, used in connect
    except ImportError as e:
        raise ConfigError(f"a milvus:// store needs pymilvus: pip install 'hashmem[milvus]' ({e})") from e
    logging.getLogger(_ITERATOR_LOG).addFilter(_QUIET)  # a no-op when already there


def connect(opts: dict, timeout: float):
    """A client for ``parse_uri``'s settings ``opts`` whose remote calls all carry ``timeout`` (seconds).

    Raises:
        BackendUnavailableError: the client cannot be made (an unreachable server, bad credentials).
    """
    from pymilvus import MilvusClient

    o = opts
    kw = {}
    if o["secure"]:
        kw["secure"] = True
        if o["server_pem"]:
            kw["server_pem_path"] = o["server_pem"]
        if o["server_name"]:
            kw["server_name"] = o["server_name"]
    token = o["token"] or (f"{o['user']}:{o['password']}" if o["user"] else "")
    with errors("connect to", opts=o):
        client = MilvusClient(uri=o["address"], token=token, db_name=o["db"], timeout=timeout, **kw)
    return _Deadline(client, timeout)


@contextlib.contextmanager
def errors(what: str, *, opts: dict):
    """pymilvus / gRPC errors → BackendUnavailableError (one line, no secrets); ours pass through.

    Args:
        what: the failed action, as in "cannot {what} Milvus at {location}".
        opts: ``parse_uri``'s settings (the location to name, the secrets to hide).
    """
    try:
        yield
    except (StoreError, ConfigError):
        raise
    except Exception as e:  # noqa: BLE001 - pymilvus raises many types (MilvusException, gRPC, OSError)
        msg = " ".join(str(e).split())[:300]
        for secret in (opts["password"], opts["token"]):
            if secret:
                msg = msg.replace(secret, "***")
        raise BackendUnavailableError(f"cannot {what} Milvus at {opts['location']}: {type(e).__name__}: {msg}") from e
