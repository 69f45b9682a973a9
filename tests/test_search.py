"""The three search stages on arrays and a fake backend (no model, no SQLite): ``memory/search.py``."""

from __future__ import annotations

import numpy as np
import pytest

from hashmem.memory import hashing, lexical, quantize, search
from hashmem.memory.backends.base import Rows
from hashmem.memory.search import Candidates

DIM, BITS, N = 96, 64, 600


class FakeBackend:
    """Rows in arrays; stage 1 by brute-force Hamming; records which calls the stages made."""

    def __init__(self, codes, qvecs, *, with_payload: bool = False, deleted=()):
        self.codes, self.qvecs, self.with_payload, self.deleted = codes, qvecs, with_payload, set(deleted)
        self.calls: list[str] = []

    def candidates(self, namespace, qcode, n, *, generation, allowed_ids=None, query_proj=None, query_vec=None):
        self.calls.append("candidates")
        ids = np.arange(1, len(self.codes) + 1, dtype=np.int64)
        if allowed_ids is not None:
            ids = np.intersect1d(ids, np.asarray(allowed_ids, dtype=np.int64))
        ham = hashing.hamming(qcode, self.codes[ids - 1]).astype(np.uint32)
        order = np.lexsort((ids, ham))[:n]
        ids, ham = ids[order], ham[order]
        if self.with_payload:
            return Candidates(ids, ham, self.codes[ids - 1], self.qvecs[ids - 1])
        return Candidates(ids, ham)

    def rows(self, ids, fields):
        self.calls.append(f"rows:{','.join(fields)}")
        ids = np.array([int(i) for i in ids if int(i) not in self.deleted], dtype=np.int64)
        cols = {"code": self.codes[ids - 1], "qvec": self.qvecs[ids - 1], "hints": [b""] * len(ids)}
        return Rows(ids, {f: cols[f] for f in fields})

    def select(self, namespace, where=None):
        return np.array([i for i in range(1, len(self.codes) + 1) if i not in self.deleted], dtype=np.int64)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = quantize.fit(x)
    qv = q.encode(x)
    hasher = hashing.fit("itq", q.decode(qv), bits=BITS)
    codes = hasher.encode(q.decode(qv))
    queries = x[:5] + 0.3 * rng.standard_normal((5, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return q, qv, hasher, codes, queries


def test_rank_runs_the_three_stages_and_matches_them_done_by_hand(data):
    q, qv, hasher, codes, queries = data
    backend = FakeBackend(codes, qv)
    ranked = search.rank(backend, hasher, q, queries, 10, namespace="n", candidates=20)
    for query, r in zip(queries, ranked, strict=True):
        ids = np.arange(1, N + 1)
        ham = hashing.hamming(hasher.encode(query[None])[0], codes)
        stage1 = ids[np.lexsort((ids, ham))][: 20 * search.ASYMMETRIC_FACTOR]
        asym = hashing.unpack_signs(codes[stage1 - 1], BITS) @ hasher.project(query[None])[0]
        stage2 = stage1[np.lexsort((stage1, -asym))][:20]
        cos = quantize.cosine(query[None], qv[stage2 - 1], q)[0]
        top = np.lexsort((stage2, -cos))[:10]
        assert r.ids.tolist() == stage2[top].tolist()
        assert np.array_equal(r.scores, cos[top]) and np.array_equal(r.hamming, ham[stage2[top] - 1])
    assert backend.calls.count("rows:code") == 5 and backend.calls.count("rows:qvec") == 5


def test_codes_and_vectors_given_with_the_candidates_are_used_and_give_the_same_ranking(data):
    q, qv, hasher, codes, queries = data
    plain, payload = FakeBackend(codes, qv), FakeBackend(codes, qv, with_payload=True)
    a = search.rank(plain, hasher, q, queries, 10, namespace="n", candidates=20)
    b = search.rank(payload, hasher, q, queries, 10, namespace="n", candidates=20)
    assert [r.ids.tolist() for r in a] == [r.ids.tolist() for r in b]
    assert all(np.array_equal(x.scores, y.scores) for x, y in zip(a, b, strict=True))
    assert payload.calls == ["candidates"] * 5  # nothing asked again, nothing cached between stages


def test_candidates_deleted_after_stage_one_drop_out(data):
    q, qv, hasher, codes, queries = data
    full = search.rank(FakeBackend(codes, qv), hasher, q, queries[:1], 5, namespace="n")[0]
    gone = int(full.ids[0])
    again = search.rank(FakeBackend(codes, qv, deleted={gone}), hasher, q, queries[:1], 5, namespace="n")[0]
    assert gone not in again.ids.tolist() and again.ids.tolist()[:4] == full.ids.tolist()[1:5]


def test_binary_and_int8_modes(data):
    q, qv, hasher, codes, queries = data
    backend = FakeBackend(codes, qv)
    b = search.rank(backend, hasher, q, queries[:1], 7, namespace="n", mode="binary")[0]
    assert np.array_equal(b.scores, 1.0 - 2.0 * b.hamming.astype(np.float32) / BITS) and len(b.ids) == 7
    exact = search.rank(backend, hasher, q, queries[:1], 7, namespace="n", mode="int8")[0]
    cos = quantize.cosine(queries[:1], qv, q)[0]
    ids = np.arange(1, N + 1)
    assert exact.ids.tolist() == ids[np.lexsort((ids, -cos))][:7].tolist()
    assert np.array_equal(exact.hamming, hashing.hamming(hasher.encode(queries[:1])[0], codes[exact.ids - 1]))


def test_fewer_candidates_than_c_skip_the_asymmetric_stage(data):
    q, qv, hasher, codes, queries = data
    backend = FakeBackend(codes[:30], qv[:30])
    r = search.rank(backend, hasher, q, queries[:1], 5, namespace="n", candidates=100)[0]
    assert len(r.ids) == 5 and "rows:code" not in backend.calls


# -- mode="hybrid": stage 3 blends int8 cosine with BM25 over the same candidates ------------


def _hybrid(words: dict[int, list[str]], query: list[str], weight: float, seen: list) -> search.Hybrid:
    def passages(cands):
        seen.append(cands.ids.copy())
        return [words.get(int(i), []) for i in cands.ids]

    return search.Hybrid([query] * 5, [{t: 1.0 for t in query}] * 5, passages, weight)


def test_hybrid_reranks_the_same_candidates_by_the_blend_and_weight_zero_is_binary_int8(data):
    q, qv, hasher, codes, queries = data
    base = search.rank(FakeBackend(codes, qv), hasher, q, queries[:1], 20, namespace="n", candidates=20)[0]
    seen: list = []
    zero = search.rank(FakeBackend(codes, qv), hasher, q, queries[:1], 20, namespace="n", candidates=20,
                       mode="hybrid", hybrid=_hybrid({}, ["wing"], 0.0, seen))[0]
    assert zero.ids.tolist() == base.ids.tolist()  # no lexical share: today's order
    assert set(seen[0].tolist()) == set(base.ids.tolist())  # the lexical side saw exactly stage 2's C
    last = int(base.ids[-1])  # the int8 stage's worst candidate holds the query word twice
    seen.clear()
    r = search.rank(FakeBackend(codes, qv), hasher, q, queries[:1], 5, namespace="n", candidates=20,
                    mode="hybrid", hybrid=_hybrid({last: ["wing", "wing"]}, ["wing"], 0.6, seen))[0]
    assert r.ids[0] == last and r.scores[0] == pytest.approx(0.6)  # 0.4·minmax(cos)=0 + 0.6·1
    dense = quantize.cosine(queries[:1], qv[seen[0] - 1], q)[0]
    expected = lexical.blend(dense, np.array([2.0 if i == last else 0.0 for i in seen[0]]), 0.6)
    order = np.lexsort((seen[0], -expected))[:5]
    assert r.ids.tolist() == seen[0][order].tolist() and np.allclose(r.scores, expected[order])


def test_hybrid_without_its_lexical_side_raises(data):
    q, qv, hasher, codes, queries = data
    with pytest.raises(ValueError, match="needs the queries' terms"):
        search.rank(FakeBackend(codes, qv), hasher, q, queries[:1], 5, namespace="n", mode="hybrid")


def test_hybrid_drops_candidates_deleted_after_stage_one(data):
    q, qv, hasher, codes, queries = data
    base = search.rank(FakeBackend(codes, qv), hasher, q, queries[:1], 5, namespace="n")[0]
    gone, seen = int(base.ids[0]), []
    backend = FakeBackend(codes, qv, deleted={gone})
    r = search.rank(backend, hasher, q, queries[:1], 5, namespace="n",
                    mode="hybrid", hybrid=_hybrid({gone: ["wing"]}, ["wing"], 0.3, seen))[0]
    assert gone not in r.ids.tolist() and gone not in seen[0].tolist()
    assert backend.calls == ["candidates", "rows:code", "rows:qvec,hints"]  # vectors and hints in one read
