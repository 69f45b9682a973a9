"""HammingIndex / NamespaceIndex: add, remove, lookups without a dict, IVF == brute force when exhaustive."""

from __future__ import annotations

import numpy as np
import pytest

from memory import kernels
from memory.index import HammingIndex, NamespaceIndex


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


def make_clustered(n, nbytes, seed):
    rng = np.random.default_rng(seed)
    centers = rng.integers(0, 256, size=(32, nbytes), dtype=np.uint8)
    noise = (rng.random((n, nbytes * 8)) < 0.15).astype(np.uint8)
    codes = centers[rng.integers(0, 32, n)] ^ np.packbits(noise, axis=-1)
    return codes


@pytest.mark.parametrize("bits", [64, 256])
def test_ivf_exhaustive_probe_equals_brute_force(bits):
    codes = make_clustered(6000, bits // 8, seed=bits)
    ids = np.arange(6000) * 2 + 1
    index = HammingIndex(bits, ivf_min_rows=2000)
    index.add("x", ids[:2500], codes[:2500])  # builds the IVF at 2,000 rows
    index.add("x", ids[2500:], codes[2500:])  # tail, then a relayout
    space = index.spaces["x"]
    assert space.is_ivf and space.nlist > 1
    for qi in (0, 17, 4999):
        got = index.search("x", codes[qi], 50, nprobe=space.nlist)
        assert (got[0].tolist(), got[1].tolist()) == brute(codes, ids, codes[qi], 50)
        ex = index.search("x", codes[qi], 50, exact=True)
        assert (ex[0].tolist(), ex[1].tolist()) == brute(codes, ids, codes[qi], 50)


def test_ivf_stays_consistent_under_adds_and_deletes():
    codes = make_clustered(9000, 16, seed=5)
    ids = np.arange(9000) + 1
    index = HammingIndex(128, ivf_min_rows=1500)
    alive = np.zeros(9000, dtype=bool)
    rng = np.random.default_rng(2)
    for s in range(0, 9000, 1000):
        index.add("x", ids[s : s + 1000], codes[s : s + 1000])
        alive[s : s + 1000] = True
        dead = rng.choice(np.flatnonzero(alive), size=600, replace=False)
        index.remove("x", ids[dead])
        alive[dead] = False
        space = index.spaces["x"]
        assert len(index) == alive.sum()
        assert space.live_ids().tolist() == ids[alive].tolist()
        # every live row sits in exactly one list (or the tail) and is found by id
        rows, found = space.rows_of(ids[alive])
        assert found.all() and len(np.unique(rows)) == alive.sum()
        if space.is_ivf:
            got = index.search("x", codes[s], 40, nprobe=space.nlist)
            assert (got[0].tolist(), got[1].tolist()) == brute(codes[alive], ids[alive], codes[s], 40)
    assert index.spaces["x"].is_ivf


def test_ivf_recall_on_clustered_codes():
    codes = make_clustered(20000, 32, seed=8)
    ids = np.arange(20000)
    index = HammingIndex(256, ivf_min_rows=10000)
    index.add("x", ids, codes)
    hits = 0
    for qi in range(0, 20000, 1000):
        got = index.search("x", codes[qi] ^ 1, 20)[0]
        ref = brute(codes, ids, codes[qi] ^ 1, 20)[0]
        hits += len(set(got.tolist()) & set(ref))
    assert hits / (20 * 20) >= 0.9
