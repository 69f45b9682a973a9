"""Errors of the servers: a stable code, an HTTP status and a one-line message.

``ApiError`` is what the service and tenancy raise for request problems the
library does not know about (authentication, authorization, size); ``describe``
maps any exception — ours or the library's — to ``(status, code, message)``.
Nothing here formats a response: ``app`` turns the triple into
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from hashmem.memory.errors import (
    ConfigError,
    HashmemError,
    InputError,
    ModelLoadError,
    ModelMismatchError,
    RecordNotFoundError,
    StoreError,
)


class ApiError(Exception):
    """A request error with its HTTP status and stable code.

    Args:
        status: the HTTP status (400, 401, 403, 404, 409, 413, 503...).
        code: a stable machine-readable code, e.g. ``forbidden``.
        message: one line for people.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def one_line(text: str) -> str:
    """The first line of a message, at most 300 characters."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:300]


def describe(exc: BaseException) -> tuple[int, str, str]:
    """(status, code, one-line message) for any exception a request can raise.

    Library errors: InputError and ConfigError → 400 ``invalid_input``,
    RecordNotFoundError → 404 ``not_found``, ModelMismatchError → 409
    ``model_mismatch``, ConfigError about a setting fixed at creation → 409
    ``settings_conflict``, StoreError (and StoreCorruptError) → 503
    ``store_unavailable``, ModelLoadError → 503 ``model_unavailable``. Anything
    else → 500 ``internal`` without details (the server logs it).
    """
    if isinstance(exc, ApiError):
        return exc.status, exc.code, one_line(exc.message)
    msg = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, RecordNotFoundError):
        return 404, "not_found", msg
    if isinstance(exc, ModelMismatchError):
        return 409, "model_mismatch", msg
    if isinstance(exc, ConfigError) and "fixed at creation" in msg:
        return 409, "settings_conflict", msg
    if isinstance(exc, InputError | ConfigError):
        return 400, "invalid_input", msg
    if isinstance(exc, StoreError):
        return 503, "store_unavailable", msg
    if isinstance(exc, ModelLoadError):
        return 503, "model_unavailable", msg
    if isinstance(exc, HashmemError):
        return 400, "invalid_input", msg
    return 500, "internal", "internal error; the server log has the details"
