"""Lexical hints: the few words, names and numbers an embedding loses, in a byte budget.

Per passage we keep, in passage order, the most salient tokens that fit in
``budget`` bytes once encoded:

- capitalized words that do not open a sentence (names) come first;
- other words next, ranked by IDF against the store's document frequencies
  (``log((N + 1) / (df + 0.5))``), stopwords and one-letter words excluded;
- numbers and dates written with digits (``1998``, ``3.5``, ``12/03``, ``25%``)
  last, as literal strings, in the bytes the words leave.

Numbers went first until issue 18. Kept last, the same 48 bytes make hint-BM25
hybrid search better (scifact-train, cranfield, LoCoMo) and reconstructions
closer (scifact-train, canterbury), at the price of most numbers of a long
passage (``benchmarks/hint_terms.py``, docs/eval.md). A store's older hints keep
their terms: the encoding is unchanged, only the choice.

Encoding: a msgpack array whose items are either an int (a term id in the
store's lexicon) or a str (a literal). Term ids are assigned in order of first
sight, so frequent terms tend to get small ids (msgpack stores ids < 128 in one
byte, < 65,536 in three).

What it does not do: persist the lexicon (``storage.py``) or rebuild text
(``decoders``).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple

import msgpack

from .errors import reading_stored

_TOKEN = re.compile(r"\d+(?:[.,:/\-]\d+)*%?|[^\W\d_](?:[\w'’\-]*\w)?")
_SENTENCE_START = re.compile(r"(?:^|[.!?…:;]\s+|\n\s*)$")
# a period after these does not end a sentence: "Dr. Smith" keeps Smith as a name
_ABBREVIATION = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Prof|St|Sr|Jr|Mt|Gen|Col|Capt|Lt|Sgt|vs|etc|e\.g|i\.e|No|Fig|al)\.\s+$")
MAX_TERM_CHARS = 40
# encode's ranking: names (score NAME_BONUS + idf), then words (idf ≥ 0), then numbers (below any word)
NAME_BONUS = 50.0
NUMBER_SCORE = -1.0

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just let me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up upon very was we were what when where which while who whom why will with
    would you your yours yourself yourselves may might must shall us one two also been
    said says say like get got go going went make made much many well even still yet however
    thus therefore within without among since per via""".split()
)


@dataclass
class Lexicon:
    """The store's vocabulary: term ↔ id, and how many passages each term occurs in.

    Attributes:
        n_docs: passages observed (added; deletes do not decrement).
        terms: id → term (ids are list positions).
        ids: term → id.
        df: id → document frequency.
    """

    n_docs: int = 0
    terms: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    df: list[int] = field(default_factory=list)
    _lower: dict[str, set[int]] = field(default_factory=dict, repr=False, compare=False)
    _lowered: int = field(default=0, repr=False, compare=False)

    def observe(self, docs: Iterable[set[str]]) -> list[int]:
        """Count each set of distinct terms as one passage; return ids of new terms.

        The terms new to the lexicon get consecutive ids in sorted order (not in order of
        appearance): neighbouring ids then share prefixes, so the stored lexicon blocks
        compress better, and ids never depend on set order.
        """
        docs = list(docs)
        counts = Counter(chain.from_iterable(docs))  # term → passages of docs holding it (each a set)
        fresh = sorted(t for t in counts if t not in self.ids)
        base = len(self.terms)
        self.ids.update((t, base + k) for k, t in enumerate(fresh))
        self.terms += fresh
        self.df += [0] * len(fresh)
        ids, df = self.ids, self.df
        for t, c in counts.items():
            df[ids[t]] += c
        self.n_docs += len(docs)
        return list(range(base, base + len(fresh)))

    def revise(self, old: Sequence[set[str]], new: Sequence[set[str]]) -> tuple[list[int], set[int]]:
        """Passages rewritten in place: each old term set counted out, each new one in (``n_docs`` stays).

        Returns:
            (ids of terms new to the lexicon, ids of every term whose count moved).
        """
        fresh = self.observe(new)
        self.n_docs -= len(new)
        ids, df = self.ids, self.df
        moved = set(fresh) | {ids[t] for s in new for t in s}
        for t in chain.from_iterable(old):
            if (i := ids.get(t)) is not None:
                df[i] = max(df[i] - 1, 0)
                moved.add(i)
        return fresh, moved

    def lowered(self, term: str) -> set[int]:
        """Ids of the terms that lowercase to ``term`` (names keep their case here: ``IgG``, ``McDonald``).

        The map is built on first use and extended as terms are added (ids only grow);
        extending it twice (two searching threads) adds the same ids.
        """
        terms, lower = self.terms, self._lower
        for i in range(self._lowered, len(terms)):
            lower.setdefault(terms[i].lower(), set()).add(i)
        self._lowered = max(self._lowered, len(terms))
        return lower.get(term, set())

    def idf(self, term: str) -> float:
        i = self.ids.get(term)
        df = self.df[i] if i is not None else 0
        return math.log((self.n_docs + 1) / (df + 0.5))


class Token(NamedTuple):
    """One candidate hint token (a tuple: the write pipeline builds millions of them)."""

    text: str  # as it appears (names keep their case)
    key: str  # lexicon key: lowercased unless a name
    pos: int  # character offset in the passage
    kind: str  # "number", "name" or "word"


def tokenize(text: str) -> list[Token]:
    """Candidate hint tokens of a passage, in order."""
    out: list[Token] = []
    append, new = out.append, tuple.__new__  # new(Token, (...)): Token(...) without its Python-level __new__
    sentence_start, abbreviation = _SENTENCE_START.search, _ABBREVIATION.search
    find, end = text.find, 0
    for s in _TOKEN.findall(text):  # one C call; a match's start is found again below, also in C
        start = find(s, end)  # no match starts between the previous match's end and this one's start, and
        end = start + len(s)  # any occurrence of s there would be one: so this is where the match starts
        if len(s) > MAX_TERM_CHARS:
            continue
        c = s[0]
        if c.isdecimal():  # what ``\d`` matches: Unicode category Nd (the regex's number branch)
            append(new(Token, (s, s, start, "number")))
        elif c.isupper() and (  # (pos, endpos) as a slice would, for a pattern without lookbehind or \b
            not sentence_start(text, max(0, start - 3), start) or abbreviation(text[max(0, start - 8) : start])
        ):
            if s.lower() in STOPWORDS:
                continue
            append(new(Token, (s, s, start, "name")))
        else:
            low = s.lower()
            if len(low) < 2 or low in STOPWORDS:
                continue
            append(new(Token, (s, low, start, "word")))
    return out


def keys(text: str) -> list[str]:
    """The keys of ``tokenize(text)`` lowercased, in order — the same list, without making ``Token``s.

    What search scores lexically (``lexical.terms``): one C-level ``findall`` and a stopword
    filter; only a text holding a one-letter capital that is not a stopword (``vitamin D``),
    which ``tokenize`` keeps or drops by its place in the sentence, goes through ``tokenize``.
    """
    found = _TOKEN.findall(text)
    if not _single_capitals().isdisjoint(found):
        return [t.key.lower() for t in tokenize(text)]
    return [low for s in found if len(s) <= MAX_TERM_CHARS and (len(s) > 1 or s[0].isdecimal())
            and (low := s.lower()) not in STOPWORDS]


@functools.cache
def _single_capitals() -> frozenset[str]:
    """One-letter tokens ``tokenize`` may keep as names: capitals whose lowercase is no stopword."""
    return frozenset(c for c in map(chr, range(0x110000)) if c.isupper() and c.lower() not in STOPWORDS)


def terms_of(tokens: Sequence[Token]) -> set[str]:
    """Distinct lexicon keys of a passage (numbers excluded: they stay literals)."""
    return {key for _, key, _, kind in tokens if kind != "number"}


def encode(tokens: Sequence[Token], lexicon: Lexicon, *, budget: int) -> bytes:
    """Pick the most salient tokens that fit ``budget`` bytes; msgpack them in passage order.

    Args:
        tokens: the passage's tokens from ``tokenize``; their terms must already
            be in ``lexicon`` (call ``Lexicon.observe`` first).
        lexicon: the store's lexicon.
        budget: maximum encoded size in bytes (the array header included).

    Returns:
        msgpack bytes of a list of ints (term ids) and strs (literals); ``b"\\x90"``
        (an empty array) when nothing fits.
    """
    ids, df, n1 = lexicon.ids, lexicon.df, lexicon.n_docs + 1
    seen: dict[str, tuple[str, int, str]] = {}  # key → (text, pos, kind) of its first token
    for text, key, pos, kind in tokens:
        if kind == "word" and text[:1].isupper() and text in ids:
            # a sentence-initial word the store has seen capitalized mid-sentence: a name
            key, kind = text, "name"
        if key not in seen:
            seen[key] = (text, pos, kind)
    scored = []  # (-score, pos, item): (score, pos) never ties, pos being unique
    for key, (text, pos, kind) in seen.items():
        if kind == "number":
            scored.append((-NUMBER_SCORE, pos, text))
            continue
        i = ids.get(key)  # Lexicon.idf, inline
        idf = math.log(n1 / ((df[i] if i is not None else 0) + 0.5))
        scored.append((-(NAME_BONUS + idf) if kind == "name" else -idf, pos, ids[key]))
    scored.sort()
    chosen: list[tuple[int, int | str]] = []
    size = 1  # fixarray header
    for _, pos, item in scored:
        if size >= budget:  # full: no item (one byte at least) fits any more
            break
        if isinstance(item, str):  # the item's msgpack size: a str with its header, an int
            n = len(item.encode("utf-8"))
            add = n + (1 if n < 32 else 2 if n < 256 else 3)
        else:
            add = 1 if item < 128 else 2 if item < 256 else 3 if item < 65536 else 5
        if len(chosen) == 15:  # array16 header past 15 items
            add += 2
        if size + add > budget:
            continue
        size += add
        chosen.append((pos, item))
    chosen.sort()
    return msgpack.packb([item for _, item in chosen])


def term_ids(data: bytes) -> list[int]:
    """Lexicon ids referenced by one encoded hint blob."""
    if not data:
        return []
    with reading_stored("a record's hints"):
        return [i for i in msgpack.unpackb(data) if isinstance(i, int)]


def decode(data: bytes, lexicon: Lexicon | Mapping[int, str]) -> list[str]:
    """The hint strings of a passage, in passage order.

    Args:
        data: msgpack bytes from ``encode``.
        lexicon: the store's Lexicon, or just id → term for the ids in ``data``.
    """
    return decode_many([data], lexicon)[0]


def decode_many(blobs: Sequence[bytes], lexicon: Lexicon | Mapping[int, str]) -> list[list[str]]:
    """``decode`` of each blob, checked as strictly and in one pass (the search path decodes k at once)."""
    terms = lexicon.terms if isinstance(lexicon, Lexicon) else lexicon
    out = []
    with reading_stored("a record's hints"):
        for data in blobs:
            if not data:
                out.append([])
                continue
            items = msgpack.unpackb(data)
            try:  # an int below 0 or any other type is damage; its TypeError, like an unknown id's, is caught
                words = [i if i.__class__ is str else terms[i] if i >= 0 and i.__class__ is int else None
                         for i in items] if items.__class__ is list else None
            except TypeError:
                words = None
            if words is None or None in words:
                raise ValueError(f"not a list of term ids and strings: {str(items)[:80]}")
            out.append(words)
    return out
