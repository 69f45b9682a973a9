"""Summaries of what the memories hold about a query, every sentence citing the memories it came from.

Two ways to make one from a search's hits (only those scoring at least
``base.ASK_MIN_SCORE`` and not written as orders, ``base.looks_like_orders``, as for ``ask``):

- ``extractive``: the top sentences. Each relevant memory is split into sentences
  (its exact text on a ``text``/``llm`` store; on a ``hints`` store its hints laid out
  in passage order, one line per memory); each sentence is embedded with the store's
  embedder and scored by its cosine to the query; the best ``max_sentences`` are kept,
  skipping one nearly repeating a kept one (cosine ≥ ``REPEAT_COSINE``), and shown in
  the order of their memories' rank, each citing its memory. Every word is stored text.
- ``model``: the llama decoder writes a summary from the memories (delimited data
  blocks, ``prompts.summary_turn``; greedy; ``LlamaDecoder.summary_draft``) and ``check``
  keeps a sentence of it only when it passes the guard ``ask`` uses (``base``): no number
  or capitalized name absent from the memories (the query's count only where a memory
  holds them; nor a capitalized first word they lack, ``unsupported_terms``), no instruction-like text, citations of
  shown memories only (a sentence citing none is given the memory sharing most of its
  words), and a word shared with the memory it cites. When no sentence survives, the
  extractive summary stands in (``Summary.method`` says which one is returned).

The default (``DEFAULT_METHOD``) was chosen by ``benchmarks/summarize.py`` (docs/summarize.md).

What it does not do: search (the caller gives the hits), load the model (``llamacpp``) or
word the prompt (``prompts``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hashmem.memory import Hit, Memory
from hashmem.memory import hints as hintlib

from .base import (
    POSSESSIVE,
    citations_in,
    holder,
    invented_terms,
    layout,
    looks_like_orders,
    memory_content,
    shares_word,
    strip_citations,
)
from .base import answerable as relevant_hits

METHODS = ("extractive", "model")
DEFAULT_METHOD = "extractive"  # chosen by measurement (docs/summarize.md)
MAX_SENTENCES = 3
REPEAT_COSINE = 0.9  # a sentence this close to a kept one repeats it
MIN_WORDS = 4  # shorter pieces ("Thanks!", a heading) are not summary sentences
NOTHING = "The memories hold nothing about this."
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_MODEL_SENTENCE = re.compile(r"(?<=[.!?\]])\s+|\n+")
_WORD = re.compile(r"\w+")
_FIRST_WORD = re.compile(r"[^\w]*([A-Z][\w'’\-]*)")
_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")  # "1648 [1]." without its citation: "1648 ." → "1648."


@dataclass(frozen=True)
class Sentence:
    """One sentence of a summary and the ids of the memories it came from."""

    text: str
    citations: list[int]


@dataclass(frozen=True)
class Summary:
    """A summary of what the memories hold about a query.

    Attributes:
        text: the sentences, each followed by its ``[id]`` citations; ``NOTHING`` when
            no memory is relevant.
        sentences: the sentences and their citations.
        citations: every cited id, in order of first citation.
        ms: wall time in milliseconds.
        found: False when no memory was relevant enough to summarize.
        method: ``extractive`` or ``model`` (the one that made ``text``).
        decoder: the decoder's name.
        dropped: sentences of the model's draft the check removed.
        unsupported: numbers and names of removed sentences that no memory holds.
    """

    text: str
    sentences: list[Sentence]
    citations: list[int]
    ms: float
    found: bool = True
    method: str = "extractive"
    decoder: str = ""
    dropped: int = 0
    unsupported: tuple[str, ...] = ()


def check_method(method: str) -> str:
    """The method name, checked (ValueError naming the choices)."""
    if method not in METHODS:
        raise ValueError(f"summary method {method!r} is not supported; use {' or '.join(METHODS)}")
    return method


def shown(memory: Memory, hits: Sequence[Hit]) -> tuple[list[Hit], dict[int, str]]:
    """The hits a summary may draw on (relevant, not orders) and what is shown of each."""
    keep, contents = [], {}
    for h in relevant_hits(hits):
        content = memory_content(memory, h)
        if not looks_like_orders(content):
            keep.append(h)
            contents[h.id] = content
    return keep, contents


def sentences_of(memory: Memory, hit: Hit, content: str) -> list[str]:
    """A memory's sentences: of its exact text, or its hints as one line on a hints store."""
    if content.startswith("keywords: ") and memory.config.fidelity == "hints":
        line = layout(hit.hints)
        return [line] if line else []
    out = []
    for s in _SENTENCE.split(content):
        s = s.strip()
        if len(_WORD.findall(s)) >= MIN_WORDS and not looks_like_orders(s):
            out.append(s)
    return out


def extractive(memory: Memory, query: str, hits: Sequence[Hit], *, max_sentences: int = MAX_SENTENCES,
               decoder: str = "extractive") -> Summary:
    """The top sentences of the relevant hits by cosine to the query, in their memories' order, cited.

    Args:
        memory: the open store (its embedder scores the sentences).
        query: what to summarize about.
        hits: the search's hits, best first.
        max_sentences: sentences kept, at most.
        decoder: the name recorded in the result.
    """
    started = time.perf_counter()
    keep, contents = shown(memory, hits)
    pool = [(rank, j, s, h.id) for rank, h in enumerate(keep)
            for j, s in enumerate(sentences_of(memory, h, contents[h.id]))]
    if not pool or not query.strip():
        return _nothing(started, decoder)
    emb = memory.embedder.encode([query] + [p[2] for p in pool], progress=False)  # [1 + n, dim], unit norm
    sims = emb[1:] @ emb[0]  # [n]
    chosen: list[int] = []
    for i in np.lexsort((np.arange(len(pool)), -sims)):  # best first, earlier on ties
        if all(float(emb[1 + i] @ emb[1 + c]) < REPEAT_COSINE for c in chosen):
            chosen.append(int(i))
        if len(chosen) == max_sentences:
            break
    picked = [Sentence(pool[i][2], [pool[i][3]]) for i in sorted(chosen, key=lambda i: pool[i][:2])]
    return _summary(picked, started, method="extractive", decoder=decoder)


def unsupported_terms(text: str, source: str) -> tuple[str, ...]:
    """Numbers and names of text that source lacks (``base.invented_terms``), and a sentence's capitalized
    first word that source lacks in any case: the tokenizer does not take a sentence's first word for a
    name, so "Napoleon signed it." would pass ``invented_terms`` alone."""
    out = dict.fromkeys(invented_terms(text, source))
    have = {w.lower() for w in _WORD.findall(source)}
    for sentence in _SENTENCE.split(text):
        first = _FIRST_WORD.match(sentence)
        if first:  # "Anti-inflammatory" is held when "anti" and "inflammatory" are
            w = POSSESSIVE.sub("", first.group(1).lower())
            if w not in hintlib.STOPWORDS and not all(p in have for p in _WORD.findall(w)):
                out.setdefault(first.group(1))
    return tuple(out)


def check(draft: str, query: str, contents: dict[int, str], ids: Sequence[int]) -> tuple[list[Sentence], int, tuple]:
    """The sentences of a model's draft that pass the guard; how many were dropped; the invented terms seen.

    A sentence is kept when it names no number or capitalized name absent from the memories
    (``unsupported_terms``; the query's own words count only where a memory holds them), is not written as orders, cites only shown memories (none cited: the one
    sharing most of its words), and shares a content word with each memory it cites.
    """
    source = " ".join(contents.values())  # not the query: a summary states what the memories say
    kept: list[Sentence] = []
    dropped, invented = 0, {}
    for raw in _MODEL_SENTENCE.split(draft.strip()):
        raw = raw.strip()
        body = _BEFORE_PUNCT.sub(r"\1", strip_citations(raw)).strip(" -*•")
        if not body:
            continue
        if len(_WORD.findall(body)) < MIN_WORDS - 1 or looks_like_orders(body):
            dropped += 1
            continue
        bad = unsupported_terms(body, source)
        if bad:
            invented.update(dict.fromkeys(bad))
            dropped += 1
            continue
        cited = citations_in(raw, ids) or [h for h in [holder(body, ids, contents)] if h is not None]
        cited = [i for i in cited if shares_word(body, contents[i])]
        if not cited or any(body == s.text for s in kept):
            dropped += not cited
            continue
        kept.append(Sentence(body, cited))
    return kept, dropped, tuple(invented)


def from_model(memory: Memory, query: str, hits: Sequence[Hit], write: Callable[[str, list[Hit], int], str], *,
               max_sentences: int = MAX_SENTENCES, decoder: str = "llama") -> Summary:
    """A model's checked summary; the extractive one when no sentence of it passes the check.

    Args:
        memory: the open store.
        query: what to summarize about.
        hits: the search's hits, best first.
        write: (query, the memories to show, sentences asked for) → the model's draft
            (``LlamaDecoder.summary_draft``).
        max_sentences: sentences asked for, and kept, at most.
        decoder: the name recorded in the result.
    """
    started = time.perf_counter()
    keep, contents = shown(memory, hits)
    if not keep or not query.strip():
        return _nothing(started, decoder)
    draft = write(query, keep, max_sentences)
    kept, dropped, invented = check(draft, query, contents, [h.id for h in keep])
    if not kept:
        fallback = extractive(memory, query, hits, max_sentences=max_sentences, decoder=decoder)
        return Summary(fallback.text, fallback.sentences, fallback.citations, (time.perf_counter() - started) * 1000,
                       fallback.found, "extractive", decoder, dropped, invented)
    return _summary(kept[:max_sentences], started, method="model", decoder=decoder, dropped=dropped,
                    unsupported=invented)


def _summary(sentences: list[Sentence], started: float, *, method: str, decoder: str, dropped: int = 0,
             unsupported: tuple = ()) -> Summary:
    text = " ".join(f"{s.text} " + "".join(f"[{i}]" for i in s.citations) for s in sentences)
    cited = list(dict.fromkeys(i for s in sentences for i in s.citations))
    return Summary(text, sentences, cited, (time.perf_counter() - started) * 1000, True, method, decoder,
                   dropped, unsupported)


def _nothing(started: float, decoder: str) -> Summary:
    return Summary(NOTHING, [], [], (time.perf_counter() - started) * 1000, False, "extractive", decoder)
