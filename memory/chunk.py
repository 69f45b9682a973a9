"""Documents → passages of about N tokens, cut on sentence boundaries.

Tokens are counted with a cheap word/punctuation regex (close to the word-piece
count for English prose, without loading a tokenizer). A sentence longer than
the target is split on word boundaries; a run of characters with no spaces is
split every ``max_chars``.

Works on a stream of text pieces, so a 50 MB file with a single line is chunked
with bounded memory. Each passage carries its character offsets in the source.

What it does not do: read files or decode bytes (``memory.sources``), embed, or store.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import InputError

DEFAULT_PASSAGE_TOKENS = 128
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n\s*\n")
_WORD_RUN = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class Passage:
    """A piece of a document.

    Attributes:
        text: the passage text, stripped.
        start: offset of the first character in the source (characters, not bytes).
        end: offset one past the last character.
    """

    text: str
    start: int
    end: int


def count_tokens(text: str) -> int:
    """Approximate token count (words and punctuation marks)."""
    return len(_TOKEN.findall(text))


def chunk_text(text: str, *, tokens: int = DEFAULT_PASSAGE_TOKENS, max_chars: int | None = None) -> list[Passage]:
    """Split one in-memory document into passages; see ``chunk_stream``."""
    return list(chunk_stream([text], tokens=tokens, max_chars=max_chars))


def chunk_stream(
    pieces: Iterable[str],
    *,
    tokens: int = DEFAULT_PASSAGE_TOKENS,
    max_chars: int | None = None,
) -> Iterator[Passage]:
    """Split a document given as successive text pieces into passages.

    Args:
        pieces: the document in order, in pieces of any size (e.g. 1 MiB reads).
        tokens: target passage length in tokens (> 0); sentences are packed
            until adding the next one would exceed it.
        max_chars: hard cap on a passage's characters (default ``tokens * 16``).

    Yields:
        Passages in document order, with character offsets; whitespace-only
        stretches yield nothing.

    Raises:
        InputError: ``tokens`` is not a positive integer.
    """
    if isinstance(tokens, bool) or not isinstance(tokens, numbers.Integral) or tokens <= 0:
        raise InputError(f"the passage length (passage_tokens) must be a positive integer, got {tokens!r}")
    max_chars = max_chars or tokens * 16
    buf = ""
    buf_start = 0  # source offset of buf[0]
    for piece in pieces:
        buf += piece
        if len(buf) <= 2 * max_chars:
            continue
        # emit every finished passage; the last may still grow with the next piece
        done = list(_pack(buf, buf_start, tokens, max_chars))
        if len(done) < 2:
            continue
        yield from done[:-1]
        cut = done[-2].end - buf_start
        buf, buf_start = buf[cut:], buf_start + cut
    if buf:
        yield from _pack(buf, buf_start, tokens, max_chars)


def _sentences(text: str, offset: int) -> Iterator[tuple[int, int]]:
    """(start, end) source offsets of sentences in text."""
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        yield offset + pos, offset + m.end()
        pos = m.end()
    if pos < len(text):
        yield offset + pos, offset + len(text)


def _pack(text: str, offset: int, tokens: int, max_chars: int) -> Iterator[Passage]:
    """Greedily pack sentences into passages of <= tokens tokens and <= max_chars chars."""
    cur_start = cur_end = None
    cur_tokens = 0
    for s, e in _pieces_within(text, offset, tokens, max_chars):
        n = count_tokens(text[s - offset : e - offset])
        if cur_start is not None and (cur_tokens + n > tokens or e - cur_start > max_chars):
            p = _passage(text, offset, cur_start, cur_end)
            if p:
                yield p
            cur_start = None
        if cur_start is None:
            cur_start, cur_tokens = s, 0
        cur_end = e
        cur_tokens += n
    if cur_start is not None:
        p = _passage(text, offset, cur_start, cur_end)
        if p:
            yield p


def _pieces_within(text: str, offset: int, tokens: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Sentences, with over-long ones cut into pieces of <= tokens tokens and <= max_chars chars."""
    for s, e in _sentences(text, offset):
        sent = text[s - offset : e - offset]
        if len(sent) <= max_chars and count_tokens(sent) <= tokens:
            yield s, e
            continue
        yield from _split_long(sent, s, tokens, max_chars)


def _split_long(sent: str, s: int, tokens: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut one long sentence, preferring whitespace, one regex pass per window."""
    pos = 0
    while pos < len(sent):
        window = sent[pos : pos + max_chars]
        ends = [m.end() for m in _TOKEN.finditer(window)]
        cut = ends[tokens - 1] if len(ends) > tokens else len(window)
        if pos + cut < len(sent):
            space = window.rfind(" ", 0, cut + 1)
            if space > 0:
                cut = space + 1
        yield s + pos, s + pos + cut
        pos += cut


def _passage(text: str, offset: int, start: int, end: int) -> Passage | None:
    raw = text[start - offset : end - offset]
    stripped = raw.strip()
    if not stripped:
        return None
    lead = len(raw) - len(raw.lstrip())
    return Passage(text=stripped, start=start + lead, end=start + lead + len(stripped))
