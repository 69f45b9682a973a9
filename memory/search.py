"""The three search stages over the backend interface: Hamming top-C·4 → asymmetric top-C → int8 rerank.

1. **Hamming** (``Backend.candidates``): the ``c · ASYMMETRIC_FACTOR`` ids nearest the
   query's code within one namespace (ties by id), as ``Candidates`` — with the codes and
   int8 vectors when the engine returns them with the ids (Milvus does), so no later
   stage asks again and nothing is cached between calls.
2. **Asymmetric**: the float query's projection · the ±1 code of each candidate keeps
   the best ``c`` (in the hasher's space; skipped when there are no more than ``c``).
3. **int8**: cosine of the float query to each candidate's dequantized int8 vector
   ranks the top ``k`` (ties by id); candidates deleted meanwhile drop out.

``mode="hybrid"`` changes stage 3 only: every one of the C candidates gets its int8 cosine
and its BM25 score (``lexical``: from its hint terms, or the words of its exact text, which
the caller's ``Hybrid.passages`` reads), and the top ``k`` are ranked by the convex blend
of the two, each min–max normalized over the candidates (the score is that blend, in
[0, 1]). ``recency_weight`` (``recency``) adds to each of the C candidates' stage-3 score
its newness (the rank of its created time among theirs, in [0, 1]) times the weight before the
top ``k`` are taken. ``mode="binary"`` stops after stage 1 (score ``1 - 2·hamming/bits``), ``mode="int8"``
scores every record of the namespace exhaustively (the quality reference). Every function
here works on arrays and a backend, never on ``Memory``: a fake backend tests them.

What it does not do: embed, validate, lock, or make ``Hit`` objects (``store.Memory``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import hashing, lexical, quantize, recency
from .config import DEFAULT_CANDIDATES

ASYMMETRIC_FACTOR = 4  # Hamming candidates per asymmetric survivor (DESIGN: 4·C → C recovers 0.99 of float32)
EXHAUSTIVE_CHUNK = 65536  # int8 vectors scored at once by mode="int8"
SearchMode = Literal["binary+int8", "hybrid", "binary", "int8"]
MODES: tuple[str, ...] = ("binary+int8", "hybrid", "binary", "int8")
DEFAULT_MODE = "hybrid"  # of a search by text (issue 18); a search by embeddings alone is binary+int8


@dataclass(frozen=True)
class Candidates:
    """Stage 1's answer: ids by Hamming distance (then id), with what the engine gave back with them.

    Attributes:
        ids: int64 [n].
        hamming: uint32 [n], ascending.
        codes: packed uint8 [n, bits/8] of the same rows, or None (then read with ``Backend.rows``).
        qvecs: int8 [n, dim] of the same rows, or None (then read with ``Backend.rows``).
        hints: the hint blobs of the same rows (a list of bytes), or None.
    """

    ids: np.ndarray
    hamming: np.ndarray
    codes: np.ndarray | None = None
    qvecs: np.ndarray | None = None
    hints: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: np.ndarray) -> Candidates:
        """The candidates at ``index`` (positions, or a boolean mask), in that order."""
        return Candidates(self.ids[index], self.hamming[index],
                          None if self.codes is None else self.codes[index],
                          None if self.qvecs is None else self.qvecs[index],
                          None if self.hints is None else [self.hints[j] for j in np.arange(len(self))[index]])


@dataclass(frozen=True)
class Hybrid:
    """What ``mode="hybrid"`` needs besides the query embeddings.

    Attributes:
        queries: each query's terms (``lexical.terms``), aligned with the embeddings.
        weights: each query's term → idf (``lexical.idf``).
        passages: the candidates' terms, one list per candidate in their order (a
            candidate whose hints or body is gone meanwhile: an empty list): what
            BM25 scores unless ``scores`` is given.
        weight: the lexical share of the blend, in [0, 1].
        scores: (query position, candidates) → their BM25 scores, float32 [n], and which of
            them were scored from exact words (bool [n], or None when all were alike), or None.
        hint_weight: the lexical share for candidates scored from their hint terms when others
            were scored from exact words (a ``text`` store some of whose bodies a byte budget
            demoted); None: ``weight`` for all.
    """

    queries: Sequence[Sequence[str]]
    weights: Sequence[Mapping[str, float]]
    passages: Callable[[Candidates], list[list[str]]]
    weight: float
    scores: Callable[[int, Candidates], tuple[np.ndarray, np.ndarray | None]] | None = None
    hint_weight: float | None = None

    def bm25(self, qi: int, cands: Candidates) -> tuple[np.ndarray, np.ndarray | None]:
        """BM25 of query ``qi`` against the candidates (float32 [n_candidates]) and which were exact words."""
        if self.scores is not None:
            return self.scores(qi, cands)
        return lexical.bm25(self.queries[qi], self.passages(cands), self.weights[qi]), None

    def blend(self, dense: np.ndarray, bm25: np.ndarray, exact: np.ndarray | None) -> np.ndarray:
        """The hybrid scores: one blend, or (exact words beside hint terms) each kind normalized on its own."""
        hint = self.weight if self.hint_weight is None else self.hint_weight
        if exact is None or exact.all():
            return lexical.blend(dense, bm25, self.weight)
        if not exact.any():
            return lexical.blend(dense, bm25, hint)
        return lexical.blend_groups(dense, bm25, exact, self.weight, hint)


@dataclass(frozen=True)
class Ranked:
    """One query's ranking: ids, scores (float32) and Hamming distances (uint32), best first."""

    ids: np.ndarray
    scores: np.ndarray
    hamming: np.ndarray


def rank(backend, hasher, quantizer, queries: np.ndarray, k: int, *, namespace: str, candidates: int | None = None,
         mode: SearchMode = "binary+int8", allowed: list[int] | None = None,
         hybrid: Hybrid | None = None, recency_weight: float = 0.0) -> list[Ranked]:
    """Rank one namespace for each query embedding (float32 [m, dim], unit length).

    Args:
        backend: the store's ``Backend``.
        hasher / quantizer: the store's current ones (the codes in the backend are the hasher's generation).
        k: results per query; candidates: C of stage 2 (default ``DEFAULT_CANDIDATES``, at least k).
        allowed: ids a ``where`` filter kept (None: no filter).
        hybrid: the lexical side of ``mode="hybrid"`` (required by it, ignored otherwise).
        recency_weight: newer candidates' boost in stage 3 (``recency``; 0: none).

    Raises:
        ValueError: ``mode="hybrid"`` without ``hybrid``.
        ConfigError: a recency weight out of [0, 1], or with a mode that has no stage 3 (``recency.check_weight``).
    """
    if mode == "hybrid" and hybrid is None:
        raise ValueError("mode='hybrid' needs the queries' terms and the candidates' (a Hybrid)")
    recency_weight = recency.check_weight(recency_weight, mode)
    c = max(DEFAULT_CANDIDATES if candidates is None else candidates, k)
    dim = queries.shape[1]
    projs = hasher.project(queries)  # [m, bits]
    qcodes = np.packbits(projs > 0, axis=-1)  # = hasher.encode(queries)
    out = []
    for qi in range(len(queries)):
        if mode == "int8":
            ids, scores = exhaustive_int8(backend, quantizer, queries[qi], namespace, allowed, k, dim)
            out.append(Ranked(ids, scores, hamming_of(backend, qcodes[qi], ids)))
            continue
        n = k if mode == "binary" else c * ASYMMETRIC_FACTOR
        cands = backend.candidates(namespace, qcodes[qi], n, generation=hasher.generation, allowed_ids=allowed,
                                   query_proj=projs[qi], query_vec=queries[qi])
        if mode == "binary":
            out.append(Ranked(cands.ids, 1.0 - 2.0 * cands.hamming.astype(np.float32) / hasher.bits, cands.hamming))
            continue
        cands = asymmetric(backend, projs[qi], cands, c, hasher.bits)
        depth = len(cands) if recency_weight else k  # with recency, every candidate may still move up
        if mode == "hybrid":
            ranked = rerank_hybrid(backend, quantizer, queries[qi], cands, depth, hybrid, qi)
        else:
            ranked = rerank_int8(backend, quantizer, queries[qi], cands, depth, dim)
        out.append(prefer_newer(backend, ranked, recency_weight, k) if recency_weight else ranked)
    return out


def prefer_newer(backend, ranked: Ranked, weight: float, k: int) -> Ranked:
    """Stage 3's candidates re-ranked by score + ``weight`` · newness (``recency.prefer_newer``); the top ``k``."""
    got = backend.rows(ranked.ids, ("created",))  # a delete may race: the rows that are left
    keep = np.fromiter((int(i) in got for i in ranked.ids), dtype=bool, count=len(ranked.ids)) \
        if len(got) != len(ranked.ids) else slice(None)
    ids, scores, ham = ranked.ids[keep], ranked.scores[keep], ranked.hamming[keep]
    order, boosted = recency.prefer_newer(ids, scores, np.asarray(got["created"], dtype=np.float64), weight, k)
    return Ranked(ids[order], boosted, ham[order])


def asymmetric(backend, proj: np.ndarray, cands: Candidates, c: int, bits: int) -> Candidates:
    """Stage 2: the ``c`` candidates whose ±1 codes best match the query's float projection (ties by id)."""
    if len(cands) <= c:
        return cands
    if cands.codes is None:  # the engine did not give them with the ids: read them (a delete may race)
        got = backend.rows(cands.ids, ("code",))
        cands = _present(cands, got)
        cands = Candidates(cands.ids, cands.hamming, got.array("code", np.uint8), cands.qvecs, cands.hints)
        if len(cands) <= c:
            return cands
    codes = cands.codes
    s = hashing.unpack_signs(codes, bits) @ proj  # [n_candidates]
    return cands.take(np.lexsort((cands.ids, -s))[:c])


def rerank_int8(backend, quantizer, query: np.ndarray, cands: Candidates, k: int, dim: int) -> Ranked:
    """Stage 3: the top ``k`` by int8 cosine (ties by id); candidates deleted since stage 1 drop out."""
    cands, scores = int8_scores(backend, quantizer, query, cands)
    order = np.lexsort((cands.ids, -scores))[:k]
    return Ranked(cands.ids[order], scores[order], cands.hamming[order])


def rerank_hybrid(backend, quantizer, query: np.ndarray, cands: Candidates, k: int, hybrid: Hybrid,
                  qi: int) -> Ranked:
    """Stage 3 of ``mode="hybrid"``: the top ``k`` by the blend of int8 cosine and BM25 (ties by id).

    Vectors (and, for BM25 of hint terms, hints) the engine did not give with the ids are read in one
    ``Backend.rows`` call.
    """
    if cands.qvecs is None and cands.hints is None:
        if hybrid.scores is None:  # BM25 of hint terms: read them with the vectors
            got = backend.rows(cands.ids, ("qvec", "hints"))  # a delete may race: the rows that are left
            cands = _present(cands, got)
            cands = Candidates(cands.ids, cands.hamming, cands.codes, got.array("qvec", np.int8), list(got["hints"]))
        else:  # scored from the words (term index or bodies): the few that need hints read them
            got = backend.rows(cands.ids, ("qvec",))
            cands = _present(cands, got)
            cands = Candidates(cands.ids, cands.hamming, cands.codes, got.array("qvec", np.int8))
    cands, dense = int8_scores(backend, quantizer, query, cands)
    bm25, exact = hybrid.bm25(qi, cands)  # [n_candidates]
    scores = hybrid.blend(dense, bm25, exact)
    order = np.lexsort((cands.ids, -scores))[:k]
    return Ranked(cands.ids[order], scores[order], cands.hamming[order])


def int8_scores(backend, quantizer, query: np.ndarray, cands: Candidates) -> tuple[Candidates, np.ndarray]:
    """The candidates still present and their int8 cosines to the query (float32 [n])."""
    if cands.qvecs is not None:
        qv = cands.qvecs
    else:
        got = backend.rows(cands.ids, ("qvec",))  # a delete may race: the rows that are left
        cands = _present(cands, got)
        qv = got.array("qvec", np.int8)
    scores = quantize.cosine(query[None, :], qv, quantizer)[0] if len(cands) else np.zeros(0, np.float32)
    return cands, scores


def _present(cands: Candidates, got) -> Candidates:
    """The candidates whose rows ``got`` holds (``Backend.rows`` keeps the asked order, drops the missing)."""
    if len(got) == len(cands):  # the usual case: nobody deleted one meanwhile
        return cands
    keep = set(got.ids.tolist())
    return cands.take(np.fromiter((int(i) in keep for i in cands.ids), dtype=bool, count=len(cands)))


def exhaustive_int8(backend, quantizer, q: np.ndarray, namespace: str, allowed, k: int, dim: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``mode="int8"``: every live record of the namespace scored by int8 cosine; the top k (ties by id)."""
    best_ids, best_scores = np.empty(0, np.int64), np.empty(0, np.float32)
    live = backend.select(namespace)
    if not len(live):
        return best_ids, best_scores
    if allowed is not None:
        live = np.intersect1d(live, np.asarray(allowed, dtype=np.int64))
    for s in range(0, len(live), EXHAUSTIVE_CHUNK):
        chunk = live[s : s + EXHAUSTIVE_CHUNK]
        got = backend.rows(chunk, ("qvec",))  # a delete may race: the rows that are left
        chunk = got.ids
        sc = quantize.cosine(q[None, :], got.array("qvec", np.int8).reshape(len(chunk), dim), quantizer)[0]
        ids = np.concatenate([best_ids, chunk])
        scores = np.concatenate([best_scores, sc])
        order = np.lexsort((ids, -scores))[:k]
        best_ids, best_scores = ids[order], scores[order]
    return best_ids, best_scores


def hamming_of(backend, qcode: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Hamming distances (uint32) of the query code to the stored codes of ``ids``."""
    if len(ids) == 0:
        return np.zeros(0, np.uint32)
    got = backend.rows(ids, ("code",))
    codes = got.array("code", np.uint8)
    pos = got.positions
    return hashing.hamming(qcode, codes[[pos[int(i)] for i in ids]])
