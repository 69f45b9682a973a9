"""What ``ask`` shows the model: the sentences of each hit nearest the question, within a token budget.

A question's cost is its prompt: a 135M model reading five passages of a book
(~1,000 characters each) spends seconds on them before it scores a single
answer. ``focus`` bounds that by design:

1. ``units``: each memory is cut into its pieces — sentences (also at ``;`` and
   ``:``; a piece longer than ``MAX_UNIT_CHARS`` at its commas or spaces), each
   with the speaker whose line it stands in (a play's ``ORLANDO<tab>…``, a
   chat's ``Caroline: …``), and the memory's leading ``(date)`` kept as its head.
2. ``select``: every piece is scored by its cosine to the question (the store's
   embedder, all pieces in one batch) plus ``LEXICAL_WEIGHT`` × the share of the
   question's content words it holds; each memory, best-ranked first, gets its
   best piece, then the best remaining pieces of any memory are added while they
   fit the token budget (tokens counted by the caller: the model's tokenizer).
3. ``render``: a memory's chosen pieces in their order, a speaker's name before
   the pieces of their lines (``Orlando: …``; an all-capitals name title-cased),
   `` … `` where pieces of one speaker (or of prose) were skipped, the head first.

Memories that fit the budget whole are shown whole (a chat turn, a short
passage): nothing is embedded then. Every word shown is the memory's own.

What it does not do: count tokens (the caller's tokenizer), build the prompt
(``prompts``), or find answers in the text (``spans``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import chat
from .base import memory_blocks, sanitize
from .prompts import SPAN_SYSTEM, question_turn
from .spans import LABEL, question_terms, speaker_name, stem

PROMPT_TOKENS = 256  # cap on a question's whole prompt (instructions, memories, question), in model tokens
MAX_UNIT_CHARS = 240  # a longer sentence is cut at its commas (then spaces) into pieces this long at most
LEXICAL_WEIGHT = 0.5  # weight of the question's words a piece holds, next to its cosine
GAP = " … "
_HEAD = re.compile(r"^\s*\([^)]{4,40}\)\s*")
_SENTENCE = re.compile(r"(?<=[.!?;:])[\"'’”)\]]*\s+")
_WORDS = re.compile(r"[^\W_][\w'’\-]*")


@dataclass(frozen=True)
class Unit:
    """One piece of a memory: a sentence (or part of one) and who speaks it."""

    text: str
    speaker: str | None


def _pack(parts: Sequence[str]) -> list[str]:
    """Parts joined by spaces into pieces of at most ``MAX_UNIT_CHARS`` (a longer part stays whole)."""
    out, cur = [], ""
    for part in parts:
        if cur and len(cur) + 1 + len(part) > MAX_UNIT_CHARS:
            out.append(cur)
            cur = part
        else:
            cur = f"{cur} {part}" if cur else part
    return out + [cur] if cur else out


def _cut(sentence: str) -> list[str]:
    """A sentence in pieces of at most ``MAX_UNIT_CHARS``: at its commas, then at spaces."""
    if len(sentence) <= MAX_UNIT_CHARS:
        return [sentence]
    return [q for p in _pack(re.split(r"(?<=,)\s+", sentence))
            for q in ([p] if len(p) <= MAX_UNIT_CHARS else _pack(p.split()))]


def units(text: str) -> tuple[str, list[Unit]]:
    """(head, pieces) of a memory: its leading "(date)" and its sentences with their speakers, in order."""
    head_m = _HEAD.match(text)
    head = head_m.group(0).strip() if head_m else ""
    body = text[head_m.end():] if head_m else text
    segments: list[tuple[str | None, str]] = []
    last, speaker = 0, None
    for m in LABEL.finditer(body):
        segments.append((speaker, body[last:m.start()]))
        speaker, last = speaker_name(m.group(1)), m.end()
    segments.append((speaker, body[last:]))
    out = []
    for who, seg in segments:
        seg = " ".join(seg.split())
        for sentence in _SENTENCE.split(seg):
            for piece in _cut(sentence.strip()):
                if _WORDS.search(piece):
                    out.append(Unit(piece, who))
    return head, out


def render(head: str, pieces: Sequence[Unit], chosen: Sequence[int]) -> str:
    """The chosen pieces (indices into ``pieces``) as the memory shown: head, speakers' names, gaps."""
    lines: list[str] = []
    prev_speaker, prev_i = object(), None
    for i in sorted(chosen):
        u = pieces[i]
        gap = prev_i is not None and i != prev_i + 1
        if u.speaker != prev_speaker:
            lines.append((f"{u.speaker}: " if u.speaker else "") + ("… " if gap and not u.speaker else "") + u.text)
        else:
            lines[-1] += (GAP if gap else " ") + u.text
        prev_speaker, prev_i = u.speaker, i
    if lines and head:
        lines[0] = f"{head} {lines[0]}"
    return "\n".join(lines)


def _lexical(asked: set[str], text: str) -> float:
    if not asked:
        return 0.0
    return len(asked & {stem(w) for w in _WORDS.findall(text)}) / len(asked)


def select(question: str, contents: Mapping[int, str], order: Sequence[int], *, budget: int,
           count: Callable[[str], int], embed: Callable[[list[str]], np.ndarray] | None,
           shown_cost: Mapping[int, int] | None = None) -> dict[int, str]:
    """What to show of each memory: its best pieces for the question, ``budget`` tokens in all.

    Args:
        question: the question.
        contents: each memory's full text (or hints), by id.
        order: the memories' ids, best first.
        budget: tokens the memories may take together (as ``count`` counts them).
        count: tokens of a text (the model's tokenizer).
        embed: unit-norm embeddings [n, dim] of texts (the store's embedder); None: lexical score only.
        shown_cost: tokens it costs to show a memory at all (its block's tags), by id.

    Returns:
        The text to show of each memory that gets any (a memory whose every piece is
        too long for what is left gets none), in ``order``.
    """
    shown_cost = shown_cost or {}
    whole = {i: contents[i] for i in order}
    if sum(count(t) + shown_cost.get(i, 0) for i, t in whole.items()) <= budget:
        return whole
    parsed = {i: units(contents[i]) for i in order}
    flat = [(i, j) for i in order for j in range(len(parsed[i][1]))]
    if not flat:
        return {}
    texts = [parsed[i][1][j].text for i, j in flat]
    asked = question_terms(question)
    score = np.array([LEXICAL_WEIGHT * _lexical(asked, t) for t in texts])
    if embed is not None:
        vecs = embed([question, *texts])
        score = score + vecs[1:] @ vecs[0]
    cost = [count(t) + 1 for t in texts]
    head_cost = {i: (count(parsed[i][0]) + 1 if parsed[i][0] else 0) + shown_cost.get(i, 0) for i in order}
    speaker_cost = {s: count(f"{s}: ") for i in order for s in {u.speaker for u in parsed[i][1]} if s}
    chosen: dict[int, list[int]] = {i: [] for i in order}
    left = budget

    def take(n: int) -> None:
        nonlocal left
        i, j = flat[n]
        extra = cost[n] + (0 if chosen[i] else head_cost[i])
        speaker = parsed[i][1][j].speaker
        extra += speaker_cost.get(speaker, 0) if speaker else 0
        if extra <= left:
            chosen[i].append(j)
            left -= extra

    by_score = sorted(range(len(flat)), key=lambda n: -score[n])
    for i in order:  # each memory its best piece first, best memory first
        best = next((n for n in by_score if flat[n][0] == i), None)
        if best is not None:
            take(best)
    for n in by_score:
        i, j = flat[n]
        if j not in chosen[i]:
            take(n)
    return {i: render(parsed[i][0], parsed[i][1], chosen[i]) for i in order if chosen[i]}


def bounded(question: str, contents: Mapping[int, str], order: Sequence[int], *, cap: int,
            prompt_of: Callable[[dict[int, str]], list[int]], count: Callable[[str], int],
            embed: Callable[[list[str]], np.ndarray] | None) -> tuple[list[int], dict[int, str]]:
    """A question's prompt of at most ``cap`` tokens, and what it shows of each memory.

    Args:
        prompt_of: the prompt's tokens when it shows these texts of the memories (``{}``: none).
        count, embed: as for ``select``.

    The memories (with their blocks' tags) get what is left of ``cap`` after the prompt without them; should the whole count a few tokens more than its parts (tokens merge
    across the seams), the budget shrinks by the excess and the pieces are chosen again.
    """
    budget = cap - len(prompt_of({}))
    tags = {i: count(f'<memory id="{i}">\n\n</memory>\n') for i in order}
    for _ in range(4):
        shown = select(question, contents, order, budget=max(budget, 0), count=count, embed=embed, shown_cost=tags)
        prompt = prompt_of(shown)
        if len(prompt) <= cap:
            break
        budget -= len(prompt) - cap
    else:
        shown = {}
        prompt = prompt_of(shown)
    return prompt, shown


def question_prompt(llm, memory, question: str, hits: Sequence, contents: Mapping[int, str], *,
                    cap: int | None) -> tuple[list[int], dict[int, str]]:
    """The prompt of an ``extract``/``span`` question (``prompts.SPAN_SYSTEM``, ``prompts.question_turn``) and
    what it shows of each memory: under ``cap`` tokens (the llama.cpp model's tokenizer), the pieces nearest the
    question (``bounded``, the store's embedder); ``cap`` None: each memory whole, up to 1,200 characters."""
    def prompt_of(shown: Mapping[int, str]) -> list[int]:
        blocks = memory_blocks(memory, [h for h in hits if h.id in shown], contents=shown,
                               max_chars=None if cap else 1200)
        return chat.prompt_tokens(llm, SPAN_SYSTEM, question_turn(blocks, question))

    if not cap:
        return prompt_of(contents), dict(contents)

    def count(text: str) -> int:
        return len(llm.tokenize(sanitize(text).encode("utf-8"), add_bos=False, special=False))

    def embed(texts: list[str]) -> np.ndarray:
        return memory.embedder.encode(texts, progress=False)

    return bounded(question, contents, [h.id for h in hits], cap=cap, prompt_of=prompt_of, count=count, embed=embed)


def shared_head(llm, prompt: Sequence[int]) -> int:
    """How many first tokens of a question prompt (``question_prompt``) every question prompt shares: the
    system message and the turn's opening, which ``chat.eval_prompt`` keeps evaluated; 0 for another prompt."""
    head = getattr(llm, "_hashmem_question_head", None)
    if head is None:  # the template rendered once per model, not once per question
        head = llm._hashmem_question_head = chat.head_tokens(llm, SPAN_SYSTEM, question_turn("", "")[0])
    return len(head) if list(prompt[: len(head)]) == head else 0
