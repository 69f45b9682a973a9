"""Checks at the door: what may be stored as text, metadata, namespace, embeddings, and what a record id is.

What it does not do: read files (``sources``) or store anything (``store``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np

from .config import MAX_K
from .errors import ConfigError, InputError

MAX_ID = 2**63 - 1  # SQLite's largest integer: ids are 1 … MAX_ID


def check_str(text: str, what: str) -> None:
    """Strings must be storable as UTF-8: no lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{what} is not valid Unicode text: a lone surrogate at position {e.start}") from e


def check_metadata(m, what: str = "metadata") -> None:
    """Metadata must be a JSON object: string keys, JSON values, finite numbers, valid Unicode.

    Raises:
        InputError: naming the first offence.
    """
    if not isinstance(m, dict):
        raise InputError(f"{what} is {type(m).__name__}, not a dict")
    bad = [k for k in m if not isinstance(k, str)]
    if bad:
        raise InputError(f"{what} has a non-string key {bad[0]!r}; JSON object keys are strings")
    try:
        json.dumps(m, allow_nan=False, ensure_ascii=False, sort_keys=True).encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{what} is not valid Unicode text: a lone surrogate") from e
    except ValueError as e:  # NaN / Infinity, a circular reference
        raise InputError(f"{what} is not valid JSON: {e} (numbers must be finite)") from e
    except TypeError as e:
        raise InputError(f"{what} is not JSON-serializable: {e}") from e
    except RecursionError as e:
        raise InputError(f"{what} is nested too deeply") from e


def check_id(i) -> int:
    """A record id as an int.

    Raises:
        InputError: not an integer (a str, a float, a bool: ``get("5")`` is a mistake, not id 5),
            or outside 1 … 2**63 - 1, the ids a record can have. numpy integers are fine.
    """
    if isinstance(i, bool | np.bool_) or not isinstance(i, int | np.integer):
        raise InputError(f"record ids are integers, got {type(i).__name__} {i!r}; convert it with int() first")
    if not 1 <= int(i) <= MAX_ID:
        raise InputError(f"record ids are 1 … 2**63 - 1, got {int(i)}")
    return int(i)


def check_namespace(namespace) -> None:
    """A namespace is a non-empty string of valid Unicode without NUL characters.

    Raises:
        ConfigError: naming the offence.
    """
    if not isinstance(namespace, str) or not namespace.strip():
        raise ConfigError(f"namespace must be a non-empty string, got {namespace!r}")
    if "\x00" in namespace:
        raise ConfigError(f"namespace contains a NUL character at position {namespace.index(chr(0))}: {namespace!r}")
    try:
        namespace.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConfigError(f"namespace is not valid Unicode text: a lone surrogate at position {e.start}") from e


def check_embeddings(embeddings, n: int, dim: int) -> np.ndarray:
    """Caller-made embeddings as float32 [n, dim]: numbers, finite, no all-zero row (it has no direction).

    Raises:
        InputError: naming the first offence.
    """
    try:
        emb = np.asarray(embeddings, dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise InputError(f"embeddings must be an array of numbers, float32 [{n}, {dim}]; "
                         f"got {type(embeddings).__name__} ({e})") from e
    if emb.shape != (n, dim):
        raise InputError(f"embeddings must have shape ({n}, {dim}), got {emb.shape}")
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        raise InputError(f"embeddings row {int(np.argmax(bad))} holds NaN or infinite values")
    zero = ~emb.any(axis=1)
    if zero.any():
        raise InputError(f"embeddings row {int(np.argmax(zero))} is all zeros: it has no direction to search by")
    return emb


def check_text(text, what: str) -> None:
    """A passage or document: a non-empty str with no NUL, valid Unicode (InputError otherwise)."""
    if not isinstance(text, str):
        raise InputError(f"{what} is {type(text).__name__}, not str")
    if not text.strip():
        raise InputError(f"{what} is empty or whitespace only; nothing to store")
    if "\x00" in text:
        raise InputError(f"{what} contains a NUL character at position {text.index(chr(0))}; not text")
    check_str(text, what)


def check_k(k, what: str = "k") -> None:
    """A result count: a positive integer no larger than ``config.MAX_K``.

    Raises:
        ConfigError: naming what was given.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ConfigError(f"{what} must be a positive integer, got {k!r}")
    if k > MAX_K:
        raise ConfigError(f"{what} must be at most {MAX_K:,}, got {k:,}; page through results instead")


def check_queries(queries, dim: int) -> np.ndarray:
    """Query embeddings as float32 [m, dim], finite.

    Raises:
        InputError: another width, NaN or infinite values.
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise InputError(f"query embeddings must have {dim} columns, got shape {queries.shape}")
    if not np.isfinite(queries).all():
        raise InputError("query embeddings hold NaN or infinite values")
    return queries


def normalize_metadata(metadata, n: int) -> list[dict]:
    """One checked metadata dict per text: from None, one dict for all, or a list of n.

    Raises:
        InputError: another type, another count, or a dict ``check_metadata`` refuses.
    """
    if metadata is None:
        return [{} for _ in range(n)]
    if isinstance(metadata, dict):
        metas = [dict(metadata) for _ in range(n)]
    elif isinstance(metadata, str | bytes) or not isinstance(metadata, Iterable):
        raise InputError(f"metadata must be a dict or a list of dicts, got {type(metadata).__name__}")
    else:
        metas = list(metadata)
        if len(metas) != n:
            raise InputError(f"got {len(metas)} metadata dicts for {n} texts; give one per text or one for all")
    for i, m in enumerate(metas):
        check_metadata(m, f"metadata {i}")
    return metas
