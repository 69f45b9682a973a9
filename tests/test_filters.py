"""The metadata filter ``where`` (memory/filters.py), without a model or a store.

``Where.parse``'s refusals and their messages under both dialects; ``to_sql`` run on a
real in-memory SQLite (json1) over rows of metadata kept as the local store keeps them;
``matches`` agreeing with it on a table of cases; the Milvus expression's text.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sqlite3

import numpy as np
import pytest

from hashmem.memory import ConfigError
from hashmem.memory.filters import Where


class Level(enum.IntEnum):
    ONE = 1


KEY_MSG = "metadata keys in where must be non-empty strings without double quotes"


# -- parse: what is refused, and with which message ---------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "milvus"])
@pytest.mark.parametrize("where, message", [
    ({1: 1}, f"{KEY_MSG}, got 1"),
    ({"": 1}, f"{KEY_MSG}, got ''"),
    ({None: 1}, f"{KEY_MSG}, got None"),
    ({'a"b': 1}, f"{KEY_MSG}, got 'a\"b'"),
    ({"n": math.nan}, "where value of 'n' must be a finite number within 64 bits, got nan"),
    ({"n": math.inf}, "where value of 'n' must be a finite number within 64 bits, got inf"),
    ({"n": -math.inf}, "where value of 'n' must be a finite number within 64 bits, got -inf"),
    ({"n": 2**63}, f"where value of 'n' must be a finite number within 64 bits, got {2**63}"),
    ({"n": -(2**63)}, f"where value of 'n' must be a finite number within 64 bits, got {-(2**63)}"),
    ({"n": 2**70}, f"where value of 'n' must be a finite number within 64 bits, got {2**70}"),
    ({"n": [1]}, "where values must be str, int, float, bool or None, got list"),
    ({"n": {"$gt": 1}}, "where values must be str, int, float, bool or None, got dict"),
    ({"n": b"1"}, "where values must be str, int, float, bool or None, got bytes"),
    ({"ok": 1, "n": (1,)}, "where values must be str, int, float, bool or None, got tuple"),
])
def test_parse_refuses_with_the_same_message_under_both_dialects(where, message, dialect):
    with pytest.raises(ConfigError) as e:
        Where.parse(where, dialect)
    assert str(e.value) == message


@pytest.mark.parametrize("where, empty, message", [
    ("n=1", True, "where must be a dict of metadata key → value, got str"),
    ([("n", 1)], True, "where must be a dict of metadata key → value, got list"),
    ({}, False, "where must be a non-empty dict of metadata key → value, got {}"),
    ("n=1", False, "where must be a non-empty dict of metadata key → value, got 'n=1'"),
    (None, False, "where must be a non-empty dict of metadata key → value, got None"),
])
def test_parse_refuses_what_is_not_a_dict(where, empty, message):
    """Memory.search takes an empty dict as no filter; Memory.find_ids (empty=False) refuses it."""
    with pytest.raises(ConfigError) as e:
        Where.parse(where, empty=empty)
    assert str(e.value) == message


def test_an_integer_too_large_for_a_float_is_refused_as_out_of_range():
    """math.isfinite(10**400) raises OverflowError: the range is checked first."""
    with pytest.raises(ConfigError, match=r"'n' must be a finite number within 64 bits, got 1000000000000000000"):
        Where.parse({"n": 10**400})
    with pytest.raises(ConfigError, match="within 64 bits, got an integer of 16610 bits"):
        Where.parse({"n": -(10**5000)})  # too long for int's repr


def test_the_first_offending_item_is_named():
    with pytest.raises(ConfigError, match="'a'"):
        Where.parse({"ok": 1, "a": math.nan, 'b"': 1})


def test_dialects_differ_in_backslashes_and_lone_surrogates():
    """A backslash in a key: sqlite accepts, milvus refuses. A lone surrogate: sqlite refuses, milvus accepts."""
    assert Where.parse({"a\\b": 1}, "sqlite").items == (("a\\b", 1),)
    with pytest.raises(ConfigError, match=KEY_MSG):
        Where.parse({"a\\b": 1}, "milvus")
    with pytest.raises(ConfigError, match=KEY_MSG):
        Where.parse({"k\ud800": 1}, "sqlite")
    with pytest.raises(ConfigError) as e:
        Where.parse({"s": "x\udc80"}, "sqlite")
    assert str(e.value) == "where value of 's' is not valid Unicode text (a lone surrogate?)"
    assert Where.parse({"k\ud800": "x\udc80"}, "milvus").items == (("k\ud800", "x\udc80"),)
    with pytest.raises(ValueError, match="dialect"):
        Where.parse({"a": 1}, "postgres")


def test_accepted_values_keep_their_order_and_type():
    w = Where.parse({"b": True, "n": 1, "f": 1.5, "s": "x", "z": None, "big": 2**63 - 1, "neg": -(2**63) + 1})
    assert w.items == (("b", True), ("n", 1), ("f", 1.5), ("s", "x"), ("z", None), ("big", 2**63 - 1),
                       ("neg", -(2**63) + 1))
    assert w and len(w) == 7 and w.dialect == "sqlite"
    assert not Where.parse({}) and len(Where.parse({})) == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.items = ()
    assert Where.parse({"a": 1}) == Where.parse({"a": 1.0})  # 1 == 1.0: equal filters


def test_each_form_refuses_a_where_checked_under_the_other_dialect():
    with pytest.raises(ValueError, match="sqlite"):
        Where.parse({"a": 1}, "sqlite").to_milvus()
    with pytest.raises(ValueError, match="milvus"):
        Where.parse({"a": 1}, "milvus").to_sql("doc")


# -- to_sql on SQLite, and matches() agreeing with it --------------------------------------------

ROWS = [  # metadata objects, kept as the local store keeps them (compact JSON, ensure_ascii=False)
    {"flag": True},  # 1
    {"flag": 1},  # 2
    {"n": 1},  # 3
    {"n": 1.0},  # 4
    {"n": 1.5},  # 5
    {"n": "1"},  # 6
    {"x": None},  # 7
    {},  # 8
    {"s": "é日本 ü"},  # 9
    {"s": "e"},  # 10
    {"it's": 1, "a.b": "dot"},  # 11
    {"n": 0, "flag": False},  # 12
    {"n": 2**62},  # 13
    {"n": -3},  # 14
    {"list": [1], "obj": {"a": 1}},  # 15
    {"x": "null", "flag": "true"},  # 16
    {"clé": "valeur", "n": 1},  # 17
    {"s": ""},  # 18
]

CASES = [  # where → ids it must find
    ({"flag": True}, [1]),
    ({"flag": 1}, [2]),  # true is not 1
    ({"flag": False}, [12]),
    ({"flag": "true"}, [16]),
    ({"n": 1}, [3, 4, 17]),  # 1 and 1.0 are equal numbers
    ({"n": 1.0}, [3, 4, 17]),
    ({"n": 1.5}, [5]),
    ({"n": "1"}, [6]),  # a string only a string
    ({"n": True}, []),
    ({"n": 0}, [12]),
    ({"n": False}, []),
    ({"n": 2**62}, [13]),
    ({"n": -3.0}, [14]),
    ({"x": None}, [7]),  # only an explicit null: not a missing key, not "null"
    ({"x": "null"}, [16]),
    ({"missing": None}, []),
    ({"s": "é日本 ü"}, [9]),
    ({"s": "e"}, [10]),  # no Unicode folding
    ({"s": ""}, [18]),
    ({"it's": 1}, [11]),
    ({"a.b": "dot"}, [11]),  # a dot inside a key is part of the key
    ({"clé": "valeur"}, [17]),
    ({"clé": "valeur", "n": 1}, [17]),
    ({"clé": "valeur", "n": 2}, []),
    ({"n": 0, "flag": False}, [12]),
    ({"list": 1}, []),
    ({"obj": "a"}, []),
    ({"x') OR 1=1 --": 1}, []),
    ({"a\\b": 1}, []),
    ({"n": np.float64(1.0)}, [3, 4, 17]),  # a float subclass is a float
    ({"n": Level.ONE}, [3, 4, 17]),  # an int subclass is an int
]


@pytest.fixture(scope="module")
def db():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, metadata TEXT)")
    conn.executemany("INSERT INTO records VALUES (?, ?)",
                     [(i, json.dumps(m, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
                      for i, m in enumerate(ROWS, 1)])
    yield conn
    conn.close()


def sql_ids(conn, where: Where, doc: str = "metadata", table: str = "records") -> list[int]:
    clauses, args = where.to_sql(doc)
    sql = f"SELECT id FROM {table} WHERE {' AND '.join(['1', *clauses])} ORDER BY id"
    return [r[0] for r in conn.execute(sql, args)]


@pytest.mark.parametrize("where, expected", CASES, ids=[repr(w) for w, _ in CASES])
def test_to_sql_and_matches_find_the_same_rows(db, where, expected):
    w = Where.parse(where)
    assert sql_ids(db, w) == expected
    assert [i for i, m in enumerate(ROWS, 1) if w.matches(m)] == expected
    if "\\" not in "".join(where):
        m = Where.parse(where, "milvus")
        assert [i for i, row in enumerate(ROWS, 1) if m.matches(row)] == expected


def test_to_sql_binds_every_key_and_value():
    clauses, args = Where.parse({"x') OR 1=1 --": "'; DROP TABLE records; --", "n": 1, "b": True, "z": None}).to_sql("d")
    assert clauses == [
        "json_type(d, ?) = 'text' AND json_extract(d, ?) = ?",
        "json_type(d, ?) IN ('integer', 'real') AND json_extract(d, ?) = ?",
        "json_type(d, ?) = ?",
        "json_type(d, ?) = 'null'",
    ]
    assert args == ["$.\"x') OR 1=1 --\"", "$.\"x') OR 1=1 --\"", "'; DROP TABLE records; --",
                    '$."n"', '$."n"', 1, '$."b"', "true", '$."z"']
    assert Where.parse({}).to_sql("d") == ([], [])


def test_to_sql_over_a_merged_document_keeps_explicit_nulls(db):
    """The local store's doc for records with an interned meta_set: json_patch(own, set)."""
    db.execute("CREATE TABLE merged (id INTEGER PRIMARY KEY, own TEXT, shared TEXT)")
    db.executemany("INSERT INTO merged VALUES (?, ?, ?)", [
        (1, '{"tag":null}', '{"source":"a.txt"}'),
        (2, '{"n":1}', '{"source":"a.txt"}'),
        (3, '{"n":1.0,"tag":"t"}', None),
    ])
    doc = "json_patch(own, coalesce(shared, '{}'))"
    assert sql_ids(db, Where.parse({"source": "a.txt"}), doc, "merged") == [1, 2]
    assert sql_ids(db, Where.parse({"tag": None}), doc, "merged") == [1]
    assert sql_ids(db, Where.parse({"n": 1, "source": "a.txt"}), doc, "merged") == [2]
    assert sql_ids(db, Where.parse({"n": 1.0}), doc, "merged") == [2, 3]


# -- to_milvus: the expression's text -------------------------------------------------------------


@pytest.mark.parametrize("where, expr", [
    ({"flag": True}, 'metadata["flag"] == true'),
    ({"flag": False}, 'metadata["flag"] == false'),
    ({"n": 1}, 'metadata["n"] == 1'),
    ({"n": -1.5}, 'metadata["n"] == -1.5'),
    ({"n": 1e20}, 'metadata["n"] == 1e+20'),
    ({"s": "a.txt"}, 'metadata["s"] == "a.txt"'),
    ({"s": 'say "hi"\\'}, 'metadata["s"] == "say \\"hi\\"\\\\"'),
    ({"s": "é"}, 'metadata["s"] == "\\u00e9"'),
    ({"s": "x\udc80"}, 'metadata["s"] == "x\\udc80"'),
    ({"it's": "1"}, 'metadata["it\'s"] == "1"'),
    ({"z": None}, ""),  # null cannot be said there: matches() decides
    ({"z": None, "n": 2}, 'metadata["n"] == 2'),
    ({"a": "x", "b": True, "c": 3}, 'metadata["a"] == "x" and metadata["b"] == true and metadata["c"] == 3'),
    ({}, ""),
    ({"n": np.float64(2.5)}, 'metadata["n"] == 2.5'),  # float subclasses as plain numbers
    ({"n": Level.ONE}, 'metadata["n"] == 1'),
])
def test_to_milvus(where, expr):
    assert Where.parse(where, "milvus").to_milvus() == expr


def test_matches_reads_stored_metadata_exactly():
    w = Where.parse({"n": 1, "b": True, "z": None, "s": "1"}, "milvus")
    assert w.matches({"n": 1.0, "b": True, "z": None, "s": "1", "extra": [1]})
    for bad in ({"n": True, "b": True, "z": None, "s": "1"}, {"n": 1, "b": 1, "z": None, "s": "1"},
                {"n": 1, "b": True, "s": "1"}, {"n": 1, "b": True, "z": None, "s": 1},
                {"n": "1", "b": True, "z": None, "s": "1"}, {}):
        assert not w.matches(bad), bad
    assert Where.parse({}).matches({}) and Where.parse({}).matches({"a": 1})
