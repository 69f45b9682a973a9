"""The lexical side of ``mode="hybrid"`` for one open store: query terms, their IDF, the candidates' terms.

``search.Hybrid`` asks for three things, which this module makes from a ``Memory``:

- the query's terms (``lexical.terms``, the hints' tokenizer) and their IDF from the
  store lexicon's document frequencies (``lexical.document_frequencies``; ``N`` is the
  lexicon's passage count);
- the candidates' BM25 scores: on a ``text`` or ``llm`` store with a term index (the local
  backend's ``base.TermIndex``, made at add from the exact words: ``termindex``) from
  the candidates' entries, no body decoded; on a ``text`` store without one (made before
  the index, or on Milvus) from the words of each exact body (a zstd frame decodes in
  ~2 µs, tokenizing it costs more); on a ``hints`` store, or an ``llm`` store without an
  index (an llm body takes far too long to decode per search), from the hint terms, taken
  from ``Candidates.hints`` when the engine gave them with the ids, else read with
  ``Backend.rows(ids, ("hints",))``.

On the decode path a body that is not zstd (an llm body in a text store) or is gone
meanwhile falls back to the passage's hint terms, or no terms.

What it does not do: rank (``search``), lock, or write the index (``ingest``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import lexical, records, termindex
from .backends.base import TermIndex
from .errors import ConfigError, InputError
from .search import Candidates, Hybrid
from .tiers import text as texttier

# the best mean nDCG@10 ratio to float32 on scifact-train and cranfield (benchmarks/hybrid.py, results/hybrid.json)
DEFAULT_LEXICAL_WEIGHT = {"hints": 0.15, "llm": 0.15, "text": 0.4}


def check_hybrid(mode: str, weight: float | None, query_texts: Sequence[str] | None, m: int,
                 fidelity: str) -> float:
    """The lexical weight a search uses, checked (0.0 unless ``mode="hybrid"``).

    Raises:
        ConfigError: a weight that is not a number in [0, 1].
        InputError: ``mode="hybrid"`` without one query text per embedding.
    """
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)
                               or not 0.0 <= weight <= 1.0):
        raise ConfigError(f"lexical_weight must be a number in [0, 1], got {weight!r}")
    if mode != "hybrid":
        return 0.0
    if query_texts is None or isinstance(query_texts, str) or len(query_texts) != m \
            or not all(isinstance(t, str) for t in query_texts):
        raise InputError(f"mode='hybrid' searches the queries' words too: give query_texts, {m} strings "
                         "(the texts the query embeddings were made from)")
    return float(DEFAULT_LEXICAL_WEIGHT.get(fidelity, DEFAULT_LEXICAL_WEIGHT["hints"]) if weight is None else weight)


def hybrid_for(mem, query_texts: Sequence[str], weight: float, *, given: bool = True) -> Hybrid:
    """The ``search.Hybrid`` of these queries on ``mem``'s store (its lexicon loads on first use).

    ``given``: the caller chose ``weight``; else it is the store's default, and on a ``text``
    store candidates scored from their hint terms (bodies a byte budget demoted) get the
    hints' default share instead.
    """
    lexicon = mem.lexicon  # once: a catch-up in another thread may drop it meanwhile
    queries = [lexical.terms(t) for t in query_texts]
    weights = [lexical.idf(lexical.document_frequencies(lexicon, q), lexicon.n_docs) for q in queries]
    hint_weight = None if given else DEFAULT_LEXICAL_WEIGHT["hints"]
    if mem.config.fidelity == "text":
        passages = lambda cands: text_terms(mem, cands)[0]  # noqa: E731
        scores = lambda qi, cands: grouped_scores(queries[qi], weights[qi], *text_terms(mem, cands))  # noqa: E731
    else:
        passages, scores = (lambda cands: hint_terms(mem, cands)), None  # noqa: E731
    if isinstance(mem.backend, TermIndex) and mem.backend.has_term_index():
        scores = lambda qi, cands: indexed_scores(mem, lexicon, queries[qi], weights[qi], cands)  # noqa: E731
    return Hybrid(queries, weights, passages, weight, scores, hint_weight)


def grouped_scores(query, weights, terms: list[list[str]], exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BM25 of passages' exact words and of others' hint terms, each kind among its own (``avgdl`` apart)."""
    out = np.zeros(len(terms), np.float32)
    for group in (np.flatnonzero(exact), np.flatnonzero(~exact)):
        if len(group):
            out[group] = lexical.bm25(query, [terms[j] for j in group], weights)
    return out, exact


def indexed_scores(mem, lexicon, query, weights, cands: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """BM25 of the candidates from their term index entries; a candidate without one (its body demoted by
    a byte budget, or deleted meanwhile) from its hint terms, among those alone."""
    got = mem.backend.term_entries(cands.ids)
    exact = np.array([int(i) in got for i in cands.ids], bool)
    out = np.zeros(len(cands), np.float32)
    if exact.any():
        entries = [termindex.entry(got[int(i)]) for i in cands.ids[exact]]
        out[exact] = termindex.scores(query, entries, lexicon, weights)
    if not exact.all():
        rest = np.flatnonzero(~exact)
        out[rest] = lexical.bm25(query, hint_terms(mem, cands.take(rest)), weights)
    return out, exact


def hint_blobs(mem, cands: Candidates) -> list[bytes]:
    """The candidates' hint blobs, in their order (b"" for a record deleted meanwhile)."""
    if cands.hints is not None:
        return list(cands.hints)
    got = mem.backend.rows(cands.ids, ("hints",))
    if len(got) == len(cands):
        return list(got["hints"])
    pos = got.positions
    return [got["hints"][pos[int(i)]] if int(i) in pos else b"" for i in cands.ids]


def hint_terms(mem, cands: Candidates) -> list[list[str]]:
    """Each candidate's hint terms."""
    return [lexical.hint_terms(s) for s in records.hint_strings(mem, hint_blobs(mem, cands))]


def text_terms(mem, cands: Candidates) -> tuple[list[list[str]], np.ndarray]:
    """Each candidate's words from its exact body (its hint terms when it has no zstd body), and which had one."""
    got = mem.backend.rows(cands.ids, ("text",))
    pos = got.positions
    bodies = [got["text"][pos[int(i)]] if int(i) in pos else None for i in cands.ids]
    out: list[list[str] | None] = [None] * len(bodies)
    for j, body in enumerate(bodies):
        if body is None or body[:1] == bytes([texttier.LLM_TAG]):
            continue
        try:
            out[j] = lexical.terms(records.decode_text(mem, body))
        except texttier.DictionaryGoneError:  # re-trained just now: read it again
            text = records.read_text(mem, int(cands.ids[j]), ())
            out[j] = lexical.terms(text) if text is not None else None
    exact = np.array([t is not None for t in out], bool)
    missing = np.flatnonzero(~exact)
    if len(missing):
        for j, terms in zip(missing, hint_terms(mem, cands.take(missing)), strict=True):
            out[j] = terms
    return out, exact  # type: ignore[return-value]
