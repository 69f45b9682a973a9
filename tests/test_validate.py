"""Checks at the door, through the API: typed errors (never a raw TypeError), nothing stored."""

from __future__ import annotations

import math

import pytest
from conftest import PASSAGES

from hashmem.memory import ConfigError, InputError, Memory, RecordNotFoundError
from hashmem.memory.validate import check_metadata

circular: dict = {}
circular["self"] = circular


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One store for the failing calls below (each leaves it unchanged, which the tests check)."""
    m = Memory(tmp_path_factory.mktemp("validate") / "s.db")
    m.add(PASSAGES, metadata=[{"n": i} for i in range(len(PASSAGES))])
    yield m
    m.close()


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({1: "a", "b": 2}, "non-string key 1"),
        ({("t",): 1}, "non-string key"),
        ({"v": math.nan}, "numbers must be finite"),
        ({"v": -math.inf}, "numbers must be finite"),
        ({"v": [1, math.inf]}, "numbers must be finite"),
        ({"v": "caf\udcff"}, "lone surrogate"),
        ({"caf\ud800": 1}, "lone surrogate"),
        ({"v": {1, 2}}, "not JSON-serializable"),
        ({"v": b"bytes"}, "not JSON-serializable"),
        ({"v": {"x": 1, 2: 3}}, "not JSON-serializable"),
        (circular, "not valid JSON"),
        (5, "a dict or a list of dicts"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_stored(shared, meta, match):
    mem = shared
    n = len(mem)
    if isinstance(meta, dict):
        with pytest.raises(InputError, match=match):
            check_metadata(meta)
    with pytest.raises(InputError, match=match):
        mem.add(["A valid passage about lighthouses."], metadata=meta)
    assert len(mem) == n


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.add(["lone \ud800 surrogate"]), InputError, "lone surrogate at position 5"),
        (lambda m: m.add(["fine"], namespace="ns\udcff"), ConfigError, "lone surrogate"),
        (lambda m: m.search("query \udcff"), InputError, "lone surrogate"),
        (lambda m: m.search("x", k=10**9), ConfigError, "at most 10,000"),
        (lambda m: m.search("x", k=1e20), ConfigError, "positive integer"),
        (lambda m: m.search("x", candidates=10**12), ConfigError, "candidates must be at most"),
        (lambda m: m.search("x", where={"n": math.nan}), ConfigError, "finite number"),
        (lambda m: m.search("x", where={"n": 2**70}), ConfigError, "within 64 bits"),
        (lambda m: m.search("x", where={1: 1}), ConfigError, "non-empty strings"),
        (lambda m: m.search("x", where={'a"b': 1}), ConfigError, "without double quotes"),
        (lambda m: m.search("x", where={"n": [1]}), ConfigError, "where values must be"),
        (lambda m: m.search("x", where="n=1"), ConfigError, "where must be a dict"),
        (lambda m: m.get(99999999999999999999), InputError, "record ids are 1 … 2\\*\\*63 - 1"),
        (lambda m: m.get(424242), RecordNotFoundError, "no record with id 424242"),
        (lambda m: m.get("abc"), InputError, "record ids are integers"),
        (lambda m: m.delete("12"), InputError, "iterable of ids"),
        (lambda m: m.delete([None]), InputError, "record ids are integers"),
    ],
)
def test_bad_api_input_gives_typed_errors(shared, call, error, match):
    mem = shared
    n = len(mem)
    with pytest.raises(error, match=match):
        call(mem)
    assert len(mem) == n


def test_where_matches_exact_types_and_any_key(mem):
    ids = mem.add(["Typed metadata passage about violins.", "Another about violins."],
                  metadata=[{"flag": True, "it's": 1, "n": 1.0}, {"flag": 1, "it's": "1", "n": 1}])
    q = "violins"
    assert [h.id for h in mem.search(q, where={"flag": True})] == [ids[0]]
    assert [h.id for h in mem.search(q, where={"flag": 1})] == [ids[1]]
    assert [h.id for h in mem.search(q, where={"it's": 1})] == [ids[0]]
    assert [h.id for h in mem.search(q, where={"it's": "1"})] == [ids[1]]
    assert sorted(h.id for h in mem.search(q, where={"n": 1})) == [2, *ids]  # 1 and 1.0 (and the fixture's 1)
    assert mem.search(q, where={"n": True}) == []  # the fixture's n=1 record too: True is not 1
    assert mem.search(q, where={"x') OR 1=1 --": 1}) == []


def test_delete_counts_a_repeated_id_once(mem):
    assert mem.delete([3, 3, 3]) == 1
    assert mem.delete([424242, 3]) == 0
    with pytest.raises(InputError, match="record ids are 1"):  # beyond 64 bits: refused, nothing deleted
        mem.delete([4, 99999999999999999999])
    assert mem.get(4).id == 4
