"""Lexical scores: Okapi BM25 of a query over passages' terms, and its blend with the dense score.

A passage's terms are either its hint terms (a ``hints`` store: the few words the hints
keep, with the store lexicon's document frequencies) or the words of its exact text (a
``text`` store). Both sides — query and passage — are tokenized by the one tokenizer the
hints use (``hints.tokenize``), then compared lowercased (``terms``): the lexicon keeps
names with their case (``Smith``) and other words lowercased, so a term's document
frequency is the largest of its case variants' (``document_frequencies``).

BM25 (Robertson & Zaragoza 2009, Lucene's non-negative IDF)::

    score(q, d) = Σ_{t ∈ q} idf(t) · tf(t, d) · (k1 + 1) / (tf(t, d) + k1 · (1 − b + b · |d| / avgdl))
    idf(t)      = log(1 + (N − df(t) + 0.5) / (df(t) + 0.5))

Query terms count once each. ``avgdl`` is the mean length of the passages scored
together (the candidates of one search, or a whole corpus for ``lexical`` alone).
Numbers are never in the lexicon; they count as terms seen in one passage.

``blend`` is the convex combination of min–max normalized dense and lexical scores
that stage 3 of ``mode="hybrid"`` ranks by.

What it does not do: read hints or bodies from a backend, decode them, or rank
(``search``); keep an index on disk.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .hints import Lexicon, keys

K1 = 0.9  # BM25 term-frequency saturation (the BEIR / Anserini setting)
B = 0.4  # BM25 length normalization

Postings = dict[str, tuple[np.ndarray, np.ndarray]]  # term → (passage positions int64, term counts float32)


def terms(text: str) -> list[str]:
    """The lexical terms of a text, in order, repeats kept: ``hints.tokenize``'s keys, lowercased (``hints.keys``)."""
    return keys(text)


def hint_terms(strings: Sequence[str]) -> list[str]:
    """The terms of one passage's decoded hint strings (``hints.decode``): each was one token at add time."""
    return [s.lower() for s in strings]


def document_frequencies(lexicon: Lexicon, query: Iterable[str]) -> dict[str, int]:
    """Passages holding each lowercased term, from the store lexicon: the largest df of its case variants.

    A term the lexicon never saw (numbers: they are hint literals) counts as seen in one passage.
    """
    out = {}
    for t in query:
        dfs = [lexicon.df[i] for v in {t, t.capitalize(), t.upper()} if (i := lexicon.ids.get(v)) is not None]
        out[t] = max(dfs) if dfs else 1
    return out


def idf(df: Mapping[str, int], n_docs: int) -> dict[str, float]:
    """BM25's non-negative IDF ``log(1 + (N − df + 0.5) / (df + 0.5))`` of each term."""
    return {t: math.log(1.0 + (max(n_docs - d, 0) + 0.5) / (d + 0.5)) for t, d in df.items()}


def postings(docs: Sequence[Sequence[str]]) -> tuple[Postings, np.ndarray]:
    """An in-RAM inverted index of term lists.

    Returns:
        (term → (positions int64 [n_t], counts float32 [n_t]), lengths float32 [n_docs]).
    """
    lists: dict[str, tuple[list[int], list[int]]] = {}
    for j, doc in enumerate(docs):
        for t, n in Counter(doc).items():
            pos, cnt = lists.setdefault(t, ([], []))
            pos.append(j)
            cnt.append(n)
    index = {t: (np.asarray(p, np.int64), np.asarray(c, np.float32)) for t, (p, c) in lists.items()}
    return index, np.fromiter((len(d) for d in docs), np.float32, count=len(docs))


def bm25_scores(query: Sequence[str], index: Postings, lengths: np.ndarray, weights: Mapping[str, float], *,
                k1: float = K1, b: float = B) -> np.ndarray:
    """BM25 of one query against every passage of ``postings``: float32 [n_docs].

    Args:
        query: the query's terms (``terms``); each distinct term counts once.
        index / lengths: from ``postings``.
        weights: term → idf (``idf``); a query term missing from it scores nothing.
        k1 / b: BM25's saturation and length normalization.
    """
    scores = np.zeros(len(lengths), np.float32)
    if not len(lengths):
        return scores
    avgdl = max(float(lengths.mean()), 1e-9)
    for t in dict.fromkeys(query):
        hit = index.get(t)
        if hit is None or t not in weights:
            continue
        pos, tf = hit
        norm = k1 * (1.0 - b + b * lengths[pos] / avgdl)  # [n_t]
        scores[pos] += weights[t] * tf * (k1 + 1.0) / (tf + norm)
    return scores


def bm25(query: Sequence[str], docs: Sequence[Sequence[str]], weights: Mapping[str, float], *,
         k1: float = K1, b: float = B) -> np.ndarray:
    """BM25 of one query against a few passages' term lists (``avgdl`` over these): float32 [n_docs].

    The same scores as ``bm25_scores`` over ``postings(docs)``, without building the index
    (a search scores its C candidates once).
    """
    lengths = np.fromiter(map(len, docs), np.float32, count=len(docs))
    wanted = [t for t in dict.fromkeys(query) if t in weights]
    counts = np.zeros((len(docs), len(wanted)), np.float32)  # [n_docs, n_terms]
    for j, t in enumerate(wanted):  # a query has a few terms: list.count per passage is C, no Counter per passage
        counts[:, j] = np.fromiter((doc.count(t) for doc in docs), np.float32, count=len(docs))
    return bm25_counts(counts, lengths, [weights[t] for t in wanted], k1=k1, b=b)


def bm25_counts(counts: np.ndarray, lengths: np.ndarray, weights: Sequence[float], *,
                k1: float = K1, b: float = B) -> np.ndarray:
    """BM25 from term counts: float32 [n_docs].

    Args:
        counts: float32 [n_docs, n_terms], how often each (distinct) query term occurs in each passage.
        lengths: float32 [n_docs], each passage's term count (``avgdl`` is their mean).
        weights: each term's idf, [n_terms].
    """
    scores = np.zeros(len(lengths), np.float32)
    if not len(lengths) or not len(weights):
        return scores
    norm = k1 * (1.0 - b + b * lengths / max(float(lengths.mean()), 1e-9))  # [n_docs]
    for j, w in enumerate(weights):
        tf = counts[:, j]
        scores += w * tf * (k1 + 1.0) / (tf + norm)  # as bm25_scores computes it
    return scores


def minmax(x: np.ndarray) -> np.ndarray:
    """Scores scaled to [0, 1] (all zeros when they are all equal)."""
    x = np.asarray(x, np.float32)
    if not len(x):
        return x
    lo, span = float(x.min()), float(x.max() - x.min())
    return (x - lo) / span if span > 0 else np.zeros_like(x)


def blend_groups(dense: np.ndarray, lexical: np.ndarray, exact: np.ndarray, weight: float,
                 hint_weight: float) -> np.ndarray:
    """``blend`` where BM25 came from two kinds of passages: exact words (``exact``) and hint terms.

    Their BM25 scores are not comparable (a passage's few hint terms match fewer query words),
    so each kind is min–max normalized on its own and blended with its own share: ``weight``
    for exact words, ``hint_weight`` for hint terms (float32 [n]).
    """
    exact = np.asarray(exact, bool)
    lex = np.zeros(len(lexical), np.float32)
    lex[exact], lex[~exact] = minmax(lexical[exact]), minmax(lexical[~exact])
    w = np.where(exact, np.float32(weight), np.float32(hint_weight))
    return ((1.0 - w) * minmax(dense) + w * lex).astype(np.float32)


def blend(dense: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """``(1 − weight) · minmax(dense) + weight · minmax(lexical)``: float32 [n].

    Raises:
        ValueError: ``weight`` outside [0, 1], or arrays of different lengths.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"lexical weight must be in [0, 1], got {weight!r}")
    if len(dense) != len(lexical):
        raise ValueError(f"{len(dense)} dense scores but {len(lexical)} lexical ones")
    return ((1.0 - weight) * minmax(dense) + weight * minmax(lexical)).astype(np.float32)
