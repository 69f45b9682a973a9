"""The term index of ``text`` and ``llm`` stores: each passage's words, counted at add time, for BM25 at search.

A passage's entry, made from the tokens ``hints.tokenize`` gave its exact text (the one
tokenizer of hints, queries and the decode path: ``lexical.terms`` are these tokens' keys,
lowercased), is one ``termcode`` blob (format 2, what a store writes since it has one: the same
fields, ~2/3 the bytes) or, in a store made before, a ``TermStats`` (format 1):

- ``length``: how many terms the passage has (repeats counted): BM25's ``|d|``;
- ``terms``: its distinct lexicon terms (``hints.Lexicon`` ids of the tokens' keys: names
  keep their case there) in ascending id order, each as one unsigned LEB128 varint of
  ``gap << 1 | (count > 1)`` (the first gap is the id itself);
- ``counts``: one byte per term whose flag is set, ``min(count, 255)``, in the same order;
- ``numbers``: the number tokens (never in the lexicon) as a msgpack map literal → count,
  or None when it has none.

``MAX_TERMS`` bounds the distinct terms (numbers included) an entry keeps: those with the
largest BM25 weight in the passage (IDF from the lexicon at add time, numbers counting as
seen once; ties by term), so that an entry stays within the issue's byte budget; ``length``
is always the whole passage's.

``scores`` gives the same BM25 as ``lexical.bm25`` over the decoded passages' terms (the
same float32 operations, ``lexical.bm25_counts``), where no kept term was pruned. A query
term matches every lexicon id whose term lowercases to it (``Lexicon.lowered``).

What it does not do: store entries (``backends.local.sidetables``), pick the weight or the
candidates (``fusion``, ``search``), or give candidates of its own (no inverted lists).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import NamedTuple

import msgpack
import numpy as np

from . import lexical, termcode
from .hints import Lexicon, Token

FORMAT = 2  # of the entries a new store writes (1: the four columns of stores made before)
MAX_TERMS: int | None = None  # distinct terms kept per passage, None: all (benchmarks/hybrid.py --index-terms: bytes vs nDCG@10)


class TermStats(NamedTuple):
    """One passage's entry (see the module docstring for the bytes)."""

    length: int
    terms: bytes
    counts: bytes
    numbers: bytes | None


def encode(tokens: Sequence[Token], lexicon: Lexicon, fmt: int = FORMAT) -> TermStats | bytes:
    """The entry of one passage from its tokens; every key not a number must be in ``lexicon``.

    ``fmt``: 2, one ``termcode`` blob; 1, a ``TermStats`` (the rows of a store made before format 2).
    Keeps at most ``MAX_TERMS`` distinct terms (read at each call; None: all of them).
    """
    max_terms = MAX_TERMS
    keys = [key for _, key, _, kind in tokens if kind != "number"]
    words: Counter[int] = Counter(map(lexicon.ids.__getitem__, keys))  # counted in C
    numbers: Counter[str] = Counter(
        key.lower() for _, key, _, kind in tokens if kind == "number") if len(keys) < len(tokens) else Counter()
    if max_terms is not None and len(words) + len(numbers) > max_terms:
        n, top = lexicon.n_docs, math.log(1.0 + (max(lexicon.n_docs - 1, 0) + 0.5) / 1.5)
        df = lexicon.df
        weight = [(-top * c / (c + lexical.K1), 0, s, c) for s, c in numbers.items()]  # df 1, as scored
        weight += [(-math.log(1.0 + (max(n - df[i], 0) + 0.5) / (df[i] + 0.5)) * c / (c + lexical.K1), 1, i, c)
                   for i, c in words.items()]
        kept = sorted(weight)[:max_terms]
        words = Counter({i: c for _, kind, i, c in kept if kind == 1})
        numbers = Counter({s: c for _, kind, s, c in kept if kind == 0})
    ids = sorted(words)
    return make(len(tokens), ids, [words[i] for i in ids], numbers, fmt)


def encode_all(tokens: Sequence[Sequence[Token]], lexicon: Lexicon, fmt: int = FORMAT) -> list[TermStats | bytes]:
    """``encode`` of each passage's tokens: in format 2 with all terms kept, every entry counted and packed at once."""
    if fmt != 2 or MAX_TERMS is not None or not tokens:
        return [encode(t, lexicon, fmt) for t in tokens]
    get = lexicon.ids.__getitem__
    words = [[get(key) for _, key, _, kind in t if kind != "number"] for t in tokens]
    lengths = [len(t) for t in tokens]
    numbers = [None if len(w) == n else Counter(key.lower() for _, key, _, kind in t if kind == "number")
               for t, w, n in zip(tokens, words, lengths, strict=True)]
    per = np.fromiter(map(len, words), np.int64, count=len(words))
    flat = np.fromiter(chain.from_iterable(words), np.int64, count=int(per.sum()))
    span = max(len(lexicon.terms), 1)  # (passage, id) as one key: unique sorts by passage, then id
    keys, counts = np.unique(np.repeat(np.arange(len(words), dtype=np.int64), per) * span + flat, return_counts=True)
    n = np.bincount(keys // span, minlength=len(words)).astype(np.int64)
    return termcode.pack_many(lengths, n, keys % span, counts.astype(np.int64), numbers)


def make(length: int, ids: Sequence[int], counts: Sequence[int], numbers: Mapping[str, int],
         fmt: int = FORMAT) -> TermStats | bytes:
    """An entry of format ``fmt`` from its fields: ``ids`` ascending lexicon ids, ``counts`` theirs."""
    if fmt == 2:
        return termcode.pack(length, ids, counts, numbers)
    terms, extra, prev = bytearray(), bytearray(), 0
    for i, c in zip(ids, counts, strict=True):  # unsigned LEB128 of gap << 1 | (count > 1), the first gap being the id
        v = (i - prev) << 1 | (c > 1)
        prev = i
        if c > 1:
            extra.append(min(c, 255))
        while v >= 0x80:
            terms.append((v & 0x7F) | 0x80)
            v >>= 7
        terms.append(v)
    return TermStats(length, bytes(terms), bytes(extra),
                     msgpack.packb(dict(sorted(numbers.items()))) if numbers else None)


Entry = TermStats | bytes | None  # format 1, format 2 (``termcode``), or no entry


def entry(row: bytes | tuple) -> TermStats | bytes:
    """An entry as ``TermIndex.term_entries`` gives it: a format 2 blob, or a format 1 row's fields."""
    return row if isinstance(row, bytes) else TermStats(*row)


def decode(entries: Sequence[Entry]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (passage, lexicon id, count) triples of a few entries (all of one format), vectorized over all of them.

    Returns:
        (passage position int64 [n], term id int64 [n], count float32 [n]); an entry that is
        None has none.
    """
    return _decode(entries)[:3]  # type: ignore[return-value]


def _decode(entries: Sequence[Entry]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Callable]:
    """``decode``'s triples, each entry's length (float32 [n_entries]) and ``numbers(wanted)``: how often
    each of the number tokens ``wanted`` occurs in each entry (float32 [n_entries, len(wanted)])."""
    if not any(isinstance(e, bytes) for e in entries):
        lengths = np.fromiter((0 if e is None else e.length for e in entries), np.float32, count=len(entries))

        def counted(wanted: Sequence[str]) -> np.ndarray:
            found = [{} if e is None or e.numbers is None else msgpack.unpackb(e.numbers) for e in entries]
            return np.array([[f.get(w, 0) for w in wanted] for f in found], np.float32).reshape(len(entries), -1)

        return (*_decode_v1(entries), lengths, counted)
    present = [j for j, e in enumerate(entries) if e is not None]
    blobs = [entries[j] for j in present]
    owner, ids, counts, lengths, starts = termcode.unpack(blobs)
    where = np.asarray(present, np.int64)
    full = np.zeros(len(entries), np.float32)
    full[where] = lengths

    def numbers(wanted: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(entries), len(wanted)), np.float32)
        hexes = termcode.patterns(wanted)
        for j, b, st in zip(present, blobs, starts.tolist(), strict=True):
            out[j] = termcode.number_counts(b, st, wanted, hexes)
        return out

    return where[owner], ids, counts, full, numbers


def _decode_v1(entries: Sequence[TermStats | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    blobs = [e.terms if e is not None else b"" for e in entries]
    raw = np.frombuffer(b"".join(blobs), np.uint8)
    if not len(raw):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    ends = raw < 0x80  # [n_bytes]: the last byte of a varint
    group = np.cumsum(ends) - ends  # varint of each byte
    first = np.flatnonzero(np.r_[True, ends[:-1]])  # [n_varints]: the first byte of each varint
    shift = 7 * (np.arange(len(raw)) - first[group])
    values = np.bincount(group, weights=((raw & 0x7F).astype(np.int64) << shift).astype(np.float64)).astype(np.int64)
    per_blob = np.fromiter((len(b) for b in blobs), np.int64, count=len(blobs))
    byte_owner = np.repeat(np.arange(len(blobs)), per_blob)
    owner = byte_owner[first]  # [n_varints]
    gaps = values >> 1
    total = np.cumsum(gaps)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    base = np.repeat(total[starts] - gaps[starts], np.diff(np.r_[starts, len(owner)]))
    ids = total - base
    counts = np.ones(len(values), np.float32)
    flagged = (values & 1).astype(bool)
    counts[flagged] = np.frombuffer(b"".join(e.counts for e in entries if e is not None), np.uint8)
    return owner, ids, counts


def counts_matrix(query: Sequence[str], entries: Sequence[Entry], lexicon: Lexicon) -> tuple[np.ndarray, np.ndarray]:
    """float32 [n_entries, len(query)]: how often each query term occurs in each passage (its kept terms),
    and each passage's length (float32 [n_entries])."""
    out = np.zeros((len(entries), len(query)), np.float32)
    if not len(entries):
        return out, np.zeros(0, np.float32)
    owner, ids, counts, lengths, numbers = _decode(entries)
    column = {}
    for j, t in enumerate(query):
        for i in lexicon.lowered(t):
            column[i] = j
    if column:
        qids = np.fromiter(column, np.int64, count=len(column))
        order = np.argsort(qids)
        qids, cols = qids[order], np.fromiter(column.values(), np.int64, count=len(column))[order]
        at = np.minimum(np.searchsorted(qids, ids), len(qids) - 1)
        hit = qids[at] == ids
        flat = np.bincount(owner[hit] * len(query) + cols[at[hit]], counts[hit], minlength=out.size)
        out += flat.reshape(out.shape).astype(np.float32)  # sums of whole counts: exact either way
    numeric = [j for j, t in enumerate(query) if t[:1].isdecimal()]
    if numeric:
        out[:, numeric] += numbers([query[j] for j in numeric])
    return out, lengths


def scores(query: Sequence[str], entries: Sequence[Entry], lexicon: Lexicon,
           weights: Mapping[str, float]) -> np.ndarray:
    """BM25 of one query against a few passages' entries (``avgdl`` over these): float32 [n_entries].

    Equal to ``lexical.bm25`` over the same passages' full term lists when no query term was pruned
    from an entry (an entry that is None: a passage with no terms).
    """
    wanted = [t for t in dict.fromkeys(query) if t in weights]
    counts, lengths = counts_matrix(wanted, entries, lexicon)
    return lexical.bm25_counts(counts, lengths, [weights[t] for t in wanted])
