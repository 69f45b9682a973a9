"""Checks at the door: what may be stored as text and metadata (valid Unicode, JSON, finite numbers).

What it does not do: read files (``sources``) or store anything (``store``).
"""

from __future__ import annotations

import json

from .errors import InputError


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
