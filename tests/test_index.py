"""HammingIndex / NamespaceIndex: add, remove, lookups without a dict, IVF == brute force when exhaustive."""

from __future__ import annotations

import numpy as np
import pytest

from hashmem.memory.backends.local.index import HammingIndex, NamespaceIndex
from hashmem.memory.kernels import topk as kernels


def brute(codes: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int):
    d = np.bitwise_count(codes ^ q[None, :]).sum(axis=1)
    order = np.lexsort((ids, d))[:k]
    return ids[order].tolist(), d[order].tolist()


def test_add_search_remove_and_lookup():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(3000, 16), dtype=np.uint8)
    ids = np.arange(1, 3001) * 3
    index = HammingIndex(128)
    for s in range(0, 3000, 700):
        index.add("a", ids[s : s + 700], codes[s : s + 700])
    space = index.spaces["a"]
    assert not hasattr(space, "_pos")
    assert (space.codes_of(ids[[5, 2999, 0]])[:, :16] == codes[[5, 2999, 0]]).all()
    got, dist = index.search("a", codes[10], 20)
    assert (got.tolist(), dist.tolist()) == brute(codes, ids, codes[10], 20)
    gone = ids[::2]
    index.remove("a", gone)
    index.remove("a", [999_999])  # unknown: ignored
    keep = np.ones(3000, dtype=bool)
    keep[::2] = False
    got, dist = index.search("a", codes[10], 20)
    assert (got.tolist(), dist.tolist()) == brute(codes[keep], ids[keep], codes[10], 20)
    assert len(index) == keep.sum()
    assert space.live_ids().tolist() == ids[keep].tolist()
    with pytest.raises(KeyError, match="not in this namespace"):
        space.codes_of([ids[0]])
    assert index.search("nope", codes[0], 5)[0].size == 0


def test_allowed_ids_filter():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, size=(500, 8), dtype=np.uint8)
    ids = np.arange(500) + 10
    index = HammingIndex(64)
    index.add("d", ids, codes)
    allowed = ids[rng.random(500) < 0.1]
    got, _ = index.search("d", codes[3], 5, allowed_ids=allowed.tolist())
    sel = np.isin(ids, allowed)
    assert got.tolist() == brute(codes[sel], ids[sel], codes[3], 5)[0]


def test_unordered_add_rebuilds():
    index = NamespaceIndex(1, 64)
    w = kernels.to_words(np.arange(40, dtype=np.uint8).reshape(5, 8))
    index.add(np.array([10, 20, 30]), w[:3])
    index.add(np.array([5, 20]), w[3:])  # older id, and a re-added one (last code wins)
    assert index.live_ids().tolist() == [5, 10, 20, 30]
    assert (index.codes_of([20]).view(np.uint64) == w[4]).all()
