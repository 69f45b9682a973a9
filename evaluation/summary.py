"""How good a summary is: the figures behind ``benchmarks/summarize.py``.

For a summary of the hits of one query (``hashmem.decoders.Summary``):

- ``coverage``: the share of the hits' key terms the summary holds. The key terms are
  the hits' own lexical hints (the store's rare words, names and numbers of each
  passage, ``Hit.hints``), lowercased, without repeats; one counts as held when it is
  a word of the summary (any case).
- ``invented``: the summary's numbers and capitalized names that none of the memories
  shown holds (the query does not count: a summary states what the memories say) (``decoders.summary.unsupported_terms``), and how many numbers
  and names it has in all; the invented-term rate is their ratio.
- ``centroid_cosine``: cosine between the summary's embedding (the store's embedder,
  citations removed) and the mean of the hits' stored int8 vectors (dequantized, each
  unit length): how close the summary lies to what was found, in the store's own space.

What it does not do: make summaries (``decoders.summary``) or time them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from hashmem.decoders.base import strip_citations
from hashmem.decoders.summary import unsupported_terms
from hashmem.memory import Hit, Memory
from hashmem.memory import hints as hintlib

_WORD = re.compile(r"[^\W_][\w'’\-]*", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?\]])\s+|\n+")
_FIRST_WORD = re.compile(r"[^\w]*([A-Z][\w'’\-]*)")


def key_terms(hits: Sequence[Hit]) -> list[str]:
    """The hits' hint terms, lowercased, in order of first appearance."""
    return list(dict.fromkeys(t.lower() for h in hits for t in h.hints))


def coverage(summary: str, terms: Sequence[str]) -> float | None:
    """Share of ``terms`` that are words of the summary (any case); None when there are no terms."""
    if not terms:
        return None
    words = {w.lower() for w in _WORD.findall(summary)} | {t.text.lower() for t in hintlib.tokenize(summary)}
    return sum(t in words for t in terms) / len(terms)


def invented(summary: str, source: str) -> tuple[int, int]:
    """(numbers and names of the summary absent from ``source``, numbers and names of the summary).

    A name is also a sentence's capitalized first word that is not a stopword (the tokenizer
    does not count those as names); such a word is invented when ``source`` lacks it in any case
    (``decoders.summary.unsupported_terms``).
    """
    text = strip_citations(summary)
    terms = {t.text for t in hintlib.tokenize(text) if t.kind in ("number", "name")}
    terms |= {m.group(1) for s in _SENTENCE.split(text) if (m := _FIRST_WORD.match(s))
              and m.group(1).lower() not in hintlib.STOPWORDS}
    return len(unsupported_terms(text, source)), len(terms)


def centroid_cosine(memory: Memory, summary: str, hits: Sequence[Hit]) -> float | None:
    """Cosine of the summary's embedding to the centroid of the hits' stored vectors (None: nothing to compare)."""
    text = strip_citations(summary)
    if not text or not hits:
        return None
    qv = np.stack([memory.get(h.id).qvec for h in hits])  # int8 [n, dim]
    vecs = memory.quantizer.decode(qv)  # float32 [n, dim]
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    centroid = vecs.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    emb = memory.embedder.encode([text], progress=False)[0]  # unit norm
    return float(emb @ centroid)
