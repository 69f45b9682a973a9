"""The metadata filter ``where``: one validator, and its forms for SQLite, Milvus and Python.

A ``where`` is a dict of metadata key → value meaning "the record's metadata[key] equals
value", for every key, with exact JSON types: ``True`` matches only JSON ``true`` (not
1), a number matches a JSON number of equal value (1 and 1.0 alike), a string only a
string, ``None`` only an explicit ``null`` (not a missing key).

``Where.parse`` checks a dict once, at the door (``Memory.search`` / ``find_ids``, before
any backend call); the backends take the parsed ``Where`` and translate it:

- ``to_sql(doc)``: clauses and bound parameters over a JSON document expression (the
  local store; no SQL is built from keys or values);
- ``to_milvus()``: a Milvus boolean expression (it cannot say "exactly ``true``" or
  "``null``", so it narrows what the server sends back and ``matches`` decides);
- ``matches(metadata)``: the exact match, in Python.

Rules (``ConfigError`` names the first offending item, in the dict's order):

- a key is a non-empty ``str`` without a double quote (a JSON path cannot name one);
- a value is a ``str``, ``int``, ``float``, ``bool`` or ``None``; a number is finite and,
  if an integer, within 64 bits (|v| < 2**63).

Two rules differ by *dialect*, as the two backends always had them (``Backend.where_dialect``
says which a backend takes):

- ``"sqlite"`` (the local store): a key and a string value must be valid Unicode
  (no lone surrogate: SQLite keeps text as UTF-8); a backslash in a key is accepted
  (SQLite reads the quoted path label verbatim, so it names no stored key).
- ``"milvus"``: a key must not hold a backslash (the expression quotes the key as it
  is); lone surrogates are not checked (string values are JSON-escaped in the
  expression, and stored metadata never holds one, so such a value matches nothing).

What it does not do: run a query (the backends) or check a namespace (``validate``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError

__all__ = ["Where"]

Dialect = Literal["sqlite", "milvus"]
Value = str | int | float | bool | None
INT64_LIMIT = 2**63  # integers must be -2**63 < v < 2**63


@dataclass(frozen=True)
class Where:
    """A checked ``where``: (key, value) pairs in the dict's order, and the rules they passed.

    Make one with ``Where.parse``; it is falsy when it holds no pair (no filter).
    """

    items: tuple[tuple[str, Value], ...]
    dialect: Dialect = "sqlite"

    @classmethod
    def parse(cls, where: dict, dialect: Dialect = "sqlite", *, empty: bool = True) -> Where:
        """Check a ``where`` dict under a backend's rules (see the module docstring).

        ``empty=False`` for ``Memory.find_ids``, where an empty filter (every record) is a mistake.

        Raises:
            ConfigError: not a dict (or an empty one with ``empty=False``);
                a key that is not a non-empty string, or holds a double quote
                (or, under ``"milvus"``, a backslash; under ``"sqlite"``, a lone
                surrogate); a value that is not a finite str / int / float / bool / None
                (or, under ``"sqlite"``, a string with a lone surrogate).
            ValueError: an unknown dialect (a programming error, not an input one).
        """
        if dialect not in ("sqlite", "milvus"):
            raise ValueError(f"unknown where dialect {dialect!r}")
        if not empty and (not isinstance(where, dict) or not where):
            raise ConfigError(f"where must be a non-empty dict of metadata key → value, got {where!r}")
        if not isinstance(where, dict):
            raise ConfigError(f"where must be a dict of metadata key → value, got {type(where).__name__}")
        sqlite = dialect == "sqlite"
        for key, value in where.items():
            if (not isinstance(key, str) or not key or '"' in key
                    or ("\\" in key if not sqlite else not _utf8(key))):
                raise ConfigError(f"metadata keys in where must be non-empty strings without double quotes, "
                                  f"got {key!r}")
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float):
                if (isinstance(value, int) and abs(value) >= INT64_LIMIT) or not math.isfinite(value):
                    huge = isinstance(value, int) and value.bit_length() > 4096  # past int's repr limit
                    shown = f"an integer of {value.bit_length()} bits" if huge else repr(value)
                    raise ConfigError(f"where value of {key!r} must be a finite number within 64 bits, got {shown}")
            elif isinstance(value, str):
                if sqlite and not _utf8(value):
                    raise ConfigError(f"where value of {key!r} is not valid Unicode text (a lone surrogate?)")
            else:
                raise ConfigError(f"where values must be str, int, float, bool or None, got {type(value).__name__}")
        return cls(tuple(where.items()), dialect)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_sql(self, doc: str) -> tuple[list[str], list]:
        """(clauses to AND together, their bound parameters) over ``doc``, an SQL expression of a
        record's metadata as a JSON object text. Only fixed texts and ``doc`` enter the clauses:
        every key and value is a parameter.
        """
        self._require("sqlite")
        clauses, args = [], []
        for key, value in self.items:
            path = f'$."{key}"'
            if isinstance(value, bool):
                clauses.append(f"json_type({doc}, ?) = ?")
                args += [path, "true" if value else "false"]
            elif value is None:
                clauses.append(f"json_type({doc}, ?) = 'null'")
                args.append(path)
            elif isinstance(value, int | float):
                clauses.append(f"json_type({doc}, ?) IN ('integer', 'real') AND json_extract({doc}, ?) = ?")
                args += [path, path, value]
            else:
                clauses.append(f"json_type({doc}, ?) = 'text' AND json_extract({doc}, ?) = ?")
                args += [path, path, value]
        return clauses, args

    def to_milvus(self) -> str:
        """A Milvus boolean expression on the JSON field ``metadata`` ("" when it can say nothing).

        It narrows, and may let through what is not an exact match (a ``true`` equals 1 there;
        a ``None`` has no clause): run ``matches`` on what comes back.
        """
        self._require("milvus")
        clauses = []
        for key, value in self.items:
            if isinstance(value, bool):
                clauses.append(f'metadata["{key}"] == {"true" if value else "false"}')
            elif isinstance(value, int | float):  # as a plain number: np.float64's repr is "np.float64(…)"
                clauses.append(f'metadata["{key}"] == {float(value) if isinstance(value, float) else int(value)!r}')
            elif isinstance(value, str):
                clauses.append(f'metadata["{key}"] == {json.dumps(value)}')
        return " and ".join(clauses)

    def matches(self, metadata: dict) -> bool:
        """Whether a record's metadata equals every pair, with exact JSON types."""
        for key, value in self.items:
            if key not in metadata:
                return False
            have = metadata[key]
            if isinstance(value, bool) or value is None or isinstance(value, str):
                if type(have) is not type(value) or have != value:
                    return False
            elif isinstance(have, bool) or not isinstance(have, int | float) or have != value:
                return False
        return True

    def _require(self, dialect: Dialect) -> None:
        if self.dialect != dialect:
            raise ValueError(f"this where was checked under the {self.dialect} rules, not {dialect}'s")


def _utf8(text: str) -> bool:
    """False for strings that cannot be UTF-8 (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
