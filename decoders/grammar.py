"""The GBNF grammar of a ``span`` answer: a few words of one memory, none of the question's.

``span_grammar`` writes, for llama.cpp's grammar-constrained sampling, a
grammar whose every sentence is a content word of one memory, then up to
``SPAN_WORDS - 1`` more words of the same memory, then a newline: an answer
never stitches words of two memories together, never repeats the question's
words back ("Maria's" asks about Maria), and cannot invent a word.

What it does not do: run the model (``llama``) or check the answer (``base.check_answer``).
"""

from __future__ import annotations

from collections.abc import Sequence

from hashmem.memory import hints as hintlib

from .base import POSSESSIVE, answer_words

SPAN_WORDS = 4  # words of a span answer, at most (LoCoMo gold answers: ~3 words)


def span_grammar(question: str, memories: Sequence[str], *, words: int = SPAN_WORDS) -> str | None:
    """A GBNF grammar admitting a short answer made of the words of one of the memories.

    Args:
        question: the question (its words are left out of every memory's vocabulary).
        memories: what the model is shown of each memory, in the order of the prompt.
        words: words of an answer, at most.

    Returns:
        The grammar's text (rule ``root``), or None when no memory has a content
        word outside the question.
    """
    asked = {POSSESSIVE.sub("", w.lower()) for w in answer_words(question)}  # "Maria's" asks about Maria
    rules = []  # one alternative per memory: an answer takes its words from one memory only
    for j, text in enumerate(memories):
        vocab = sorted({w for w in answer_words(text) if POSSESSIVE.sub("", w.lower()) not in asked})
        content = [w for w in vocab if w.lower() not in hintlib.STOPWORDS]  # no "an an an"
        if content:
            rules.append((j, content, vocab))
    if not rules:
        return None
    lit = lambda ws: " | ".join(gbnf_literal(w) for w in ws)  # noqa: E731
    return "root ::= (" + " | ".join(f"m{j}" for j, _, _ in rules) + ') "\\n"\n' + "".join(
        f'm{j} ::= c{j} (" " w{j}){{0,{words - 1}}}\nc{j} ::= {lit(c)}\nw{j} ::= {lit(v)}\n'
        for j, c, v in rules)


def gbnf_literal(text: str) -> str:
    """A GBNF string literal matching text exactly."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"'
