"""The decoder interface, its result types, and what every decoder shares.

A decoder turns what a store keeps of a passage (hints, int8 vector, code; in a
``text``-tier store the exact text) back into text, and answers questions from
recalled passages. Shared here:

- ``Reconstruction`` and ``Answer``, the result types;
- ``score_candidates``: re-embed candidate texts with the store's embedder and
  score them against the stored int8 vector (cosine), the stored code (Hamming)
  and the hints (numbers and names a candidate adds that the hints lack);
- ``invented_terms``: numbers and capitalized names of a text absent from a
  reference, used in scoring and in evaluation;
- ``memory_blocks`` / ``citations_in``: recalled passages laid out as delimited
  data for a prompt, and the ``[id]`` citations found in an answer;
- ``check_answer``: the guard every drafted answer passes before anyone sees it,
  and ``looks_like_orders``: memories written as instructions to the model.

What it does not do: run a language model (``llama``) or lay hints out as text
(``extractive``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hashmem.memory import Hit, Memory, Record
from hashmem.memory import hints as hintlib
from hashmem.memory.hashing import hamming

NOT_FOUND = "The memories do not hold the answer."
ASK_MIN_SCORE = 0.25  # a question whose best hit scores below this is not answered from memory
HAMMING_WEIGHT = 0.1  # weight of the code agreement (1 - 2·hamming/bits) in a candidate's score
UNSUPPORTED_PENALTY = 0.05  # subtracted per number or name a candidate adds that is not in the hints
_WORD = re.compile(r"[^\W_][\w'’\-]*", re.UNICODE)
_CITATION = re.compile(r"\[(\d+)\]")
POSSESSIVE = re.compile(r"['’]s?$")

OnToken = Callable[[str], None]


@dataclass(frozen=True)
class Reconstruction:
    """A passage rebuilt from what the store keeps.

    Attributes:
        id: the record id.
        text: the rebuilt (or, when ``exact``, the stored) passage.
        fidelity: cosine between the embedding of ``text`` and the stored int8
            vector (dequantized), in [-1, 1]; 1.0 when ``exact``.
        exact: True when ``text`` is the stored passage itself (``text`` tier).
        candidates_tried: candidate texts drawn and scored (0 when exact).
        ms: wall time of the reconstruction in milliseconds.
        decoder: the decoder's name (``llama``, ``extractive`` or ``text``).
        hamming: Hamming distance between the code of ``text`` and the stored code.
        unsupported: numbers and names in ``text`` that the hints do not hold.
    """

    id: int
    text: str
    fidelity: float
    exact: bool
    candidates_tried: int
    ms: float
    decoder: str = ""
    hamming: int | None = None
    unsupported: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """An answer to a question from recalled memories.

    Attributes:
        text: the answer; ``NOT_FOUND`` when the memories do not hold it.
        citations: ids of the memories the answer cites, in order of first citation.
        ms: wall time in milliseconds.
        found: False when the decoder concluded the memories do not hold the answer.
        unsupported: numbers and names in the answer found in neither the memories
            nor the question (a sign of an invented answer).
        decoder: the decoder's name.
    """

    text: str
    citations: list[int]
    ms: float
    found: bool = True
    unsupported: tuple[str, ...] = ()
    decoder: str = ""


@dataclass(frozen=True)
class Scored:
    """One candidate text and how well it matches the stored passage."""

    text: str
    score: float
    cosine: float
    hamming: int
    unsupported: tuple[str, ...] = field(default_factory=tuple)


class Decoder(ABC):
    """Rebuilds passages of one store and answers questions from its hits.

    Args:
        memory: the open store whose records are decoded.
    """

    name: str = "decoder"

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.notice: str | None = None  # set when this decoder stands in for another

    def record(self, record: Record | int) -> Record:
        return self.memory.get(record) if isinstance(record, int | np.integer) else record

    @abstractmethod
    def reconstruct(self, record: Record | int) -> Reconstruction:
        """Rebuild one passage; exact in a ``text``-tier store."""

    @abstractmethod
    def ask(self, question: str, hits: Sequence[Hit], *, on_token: OnToken | None = None) -> Answer:
        """Answer a question only from the given hits, citing them by id."""

    @abstractmethod
    def summarize(self, query: str, hits: Sequence[Hit], *, max_sentences: int = 3, method: str | None = None):
        """A short summary of what the hits hold about the query, each sentence citing its ids (``summary.Summary``)."""

    def exact(self, record: Record, started: float) -> Reconstruction:
        """The stored passage of a ``text``-tier record."""
        import time

        return Reconstruction(id=record.id, text=record.text or "", fidelity=1.0, exact=True,
                              candidates_tried=0, ms=(time.perf_counter() - started) * 1000,
                              decoder=self.memory.config.fidelity)


# -- scoring ---------------------------------------------------------------------------------


def surface_terms(text: str) -> tuple[set[str], set[str]]:
    """(numbers, capitalized names) of a text, as ``hints.tokenize`` sees them (names as written)."""
    numbers, names = set(), set()
    for t in hintlib.tokenize(text):
        if t.kind == "number":
            numbers.add(t.text)
        elif t.kind == "name":
            names.add(t.text)
    return numbers, names


def invented_terms(text: str, reference: str | Sequence[str]) -> tuple[str, ...]:
    """Numbers and capitalized names in ``text`` that ``reference`` does not contain.

    A number counts as present when the same digits string occurs in the
    reference; a name when its lowercase form occurs there as a word (in any case).

    Args:
        text: the generated text.
        reference: the original passage, or a list of hint strings.

    Returns:
        The absent terms, in order of appearance, without repeats.
    """
    ref = reference if isinstance(reference, str) else " ".join(reference)
    ref_numbers = {t.text for t in hintlib.tokenize(ref) if t.kind == "number"}
    # words as hints.tokenize cuts them ("8-CPT" → "CPT", "Editors'" → "Editors") and as whole runs
    ref_words = {w.lower() for w in _WORD.findall(ref)} | {t.text.lower() for t in hintlib.tokenize(ref)}
    out: dict[str, None] = {}
    for t in hintlib.tokenize(text):
        if t.kind == "number" and t.text not in ref_numbers:
            out.setdefault(t.text)
        elif t.kind == "name" and not {t.text.lower(), POSSESSIVE.sub("", t.text.lower())} & ref_words:
            out.setdefault(t.text)  # "Ana's" is supported by "Ana"
    return tuple(out)


def score_candidates(memory: Memory, record: Record, texts: Sequence[str]) -> list[Scored]:
    """Score candidate reconstructions of a record against what the store keeps.

    ``score = cosine + HAMMING_WEIGHT · (1 − 2·hamming/bits) − UNSUPPORTED_PENALTY · n_unsupported``
    where cosine is between the candidate's embedding (the store's embedder) and
    the record's dequantized int8 vector, hamming is between the candidate's code
    (the store's hasher) and the record's code, and unsupported counts numbers
    and names the hints do not hold.

    Returns:
        One Scored per text, in the given order.
    """
    if not texts:
        return []
    emb = embed_each(memory, texts)  # [n, dim] float32, unit norm
    stored = memory.quantizer.decode(record.qvec[None, :])[0]  # [dim]
    stored = stored / max(float(np.linalg.norm(stored)), 1e-12)
    cos = emb @ stored  # [n]
    codes = memory.hasher.encode(memory.quantizer.decode(memory.quantizer.encode(emb)))  # [n, bits/8]
    ham = hamming(record.code, codes)  # [n]
    bits = memory.config.bits
    out = []
    for t, c, h in zip(texts, cos, ham, strict=True):
        bad = invented_terms(t, record.hints)
        s = float(c) + HAMMING_WEIGHT * (1 - 2 * int(h) / bits) - UNSUPPORTED_PENALTY * len(bad)
        out.append(Scored(text=t, score=s, cosine=float(c), hamming=int(h), unsupported=bad))
    return out


def layout(hints: Sequence[str]) -> str:
    """Hints as one readable line: in passage order, first letter capitalized, final period."""
    text = " ".join(h for h in hints if h)
    if not text:
        return ""
    return text[0].upper() + text[1:] + "."


def embed_each(memory: Memory, texts: Sequence[str]) -> np.ndarray:
    """float32 [n, dim] embeddings, each text embedded alone.

    One at a time because a dynamically quantized (int8 ONNX) embedder gives a
    text a slightly different vector depending on the other texts of its batch
    (cosine ~0.993); a candidate's score must not depend on its companions.
    """
    return np.concatenate([memory.embedder.encode([t], progress=False) for t in texts])


def best(scored: Sequence[Scored]) -> Scored:
    """The highest-scoring candidate (the first one on ties)."""
    return max(scored, key=lambda s: s.score)


# -- asking ----------------------------------------------------------------------------------


def memory_content(memory: Memory, hit: Hit) -> str:
    """What a prompt may show of a hit: its exact text (``text``/``llm`` tier) or its hints."""
    if memory.config.fidelity in ("text", "llm"):
        text = memory.get(hit.id).text
        if text is not None:
            return text
    return "keywords: " + ", ".join(hit.hints)


def sanitize(text: str) -> str:
    """Stored text made inert inside a prompt: no delimiters or chat markers of ours."""
    return text.replace("<", "‹").replace(">", "›").replace("[", "(").replace("]", ")")


def memory_blocks(memory: Memory, hits: Sequence[Hit], *, max_chars: int | None = 1200,
                  contents: Mapping[int, str] | None = None) -> str:
    """Hits as delimited data blocks: ``<memory id="12">…</memory>``, one per hit (its ``contents`` when given)."""
    parts = []
    for h in hits:
        body = sanitize(memory_content(memory, h) if contents is None else contents[h.id])[:max_chars]
        parts.append(f'<memory id="{h.id}">\n{body}\n</memory>')
    return "\n".join(parts)


def citations_in(text: str, allowed: Sequence[int]) -> list[int]:
    """Ids cited as ``[id]`` in text that are among ``allowed``, in order of first citation."""
    ok = {int(a) for a in allowed}
    out: dict[int, None] = {}
    for m in _CITATION.finditer(text):
        i = int(m.group(1))
        if i in ok:
            out.setdefault(i)
    return list(out)


def answerable(hits: Sequence[Hit], *, min_score: float = ASK_MIN_SCORE) -> list[Hit]:
    """The hits relevant enough to answer from (score ≥ min_score), best first."""
    return [h for h in sorted(hits, key=lambda h: -h.score) if h.score >= min_score]


def not_found(started: float, decoder: str) -> Answer:
    import time

    return Answer(text=NOT_FOUND, citations=[], ms=(time.perf_counter() - started) * 1000,
                  found=False, decoder=decoder)


# -- the answer guard ------------------------------------------------------------------------

_NOT_FOUND_PATTERNS = re.compile(
    r"do(?:es)? not (?:hold|contain|mention|provide|answer|say)|not (?:mentioned|provided|stated|found)|"
    r"no information|cannot (?:be )?answer|can't answer|unable to answer",
    re.IGNORECASE,
)
# stored text addressed to the model rather than about the world: never a source of an answer
_ORDERS = re.compile(
    r"\b(?:ignore|disregard|forget)\b[^.\n]{0,40}\b(?:instructions?|prompts?|rules|question)\b|"
    r"\bsystem (?:override|notice|prompt|message)\b|\badmin mode\b|\byou are now\b|"
    r"\b(?:reply|respond|answer|say) only\b|<\|im_(?:start|end)\|>|</?memory\b",
    re.IGNORECASE,
)
_ANSWER_WORD = re.compile(r"[^\s\[\]()<>{}\"‹›]+")
_EDGE = ".,;:!?'’\"“”-"


def looks_like_orders(text: str) -> bool:
    """Whether stored text tries to instruct the model (a prompt injection), e.g. "ignore all previous instructions"."""
    return bool(_ORDERS.search(text))


def answer_words(text: str) -> list[str]:
    """The words of a text as an answer may use them: whitespace-separated, edge punctuation stripped."""
    out = []
    for w in _ANSWER_WORD.findall(text.replace("keywords:", " ")):
        w = w.strip(_EDGE)
        if w:
            out.append(w)
    return out


def _keys(text: str) -> set[str]:
    return {t.key.lower() for t in hintlib.tokenize(text)}


def check_answer(draft: str, question: str, hits: Sequence[Hit], contents: dict[int, str], *,
                 started: float, decoder: str) -> Answer:
    """The guard: a draft becomes an Answer only when the memories support it, else ``NOT_FOUND``.

    Rules, in order: an empty or "not found" draft is ``NOT_FOUND``; a draft naming
    a number or capitalized name found in neither the memories nor the question is
    ``NOT_FOUND`` (``unsupported`` says which); the question's own numbers and
    names must occur in the memories (else the memories are about something
    else); the draft's citations must name given memories — a draft that cites
    none is attributed to the memory sharing most of its words (it is not
    rejected for a missing bracket) — and the first cited memory must share a
    content word with the question.

    Args:
        draft: the model's text.
        question: the question.
        hits: the memories shown to the model, best first.
        contents: what the model was shown of each hit, by id.
        started: ``time.perf_counter()`` when answering began.
        decoder: the decoder's name.
    """
    import time

    ms = lambda: (time.perf_counter() - started) * 1000  # noqa: E731
    draft = (draft or "").strip()
    nothing = Answer(text=NOT_FOUND, citations=[], ms=ms(), found=False, decoder=decoder)
    if not draft or NOT_FOUND.lower() in draft.lower() or _NOT_FOUND_PATTERNS.search(draft):
        return nothing
    source = " ".join(contents.values())
    unsupported = invented_terms(_CITATION.sub(" ", draft), source + " " + question)
    if unsupported:
        return Answer(text=NOT_FOUND, citations=[], ms=ms(), found=False, unsupported=unsupported, decoder=decoder)
    if invented_terms(question, source):  # the question names what no memory holds
        return nothing
    ids = [h.id for h in hits]
    cited = citations_in(draft, ids)
    if not cited:
        source_id = holder(draft, ids, contents)
        if source_id is None:
            return nothing
        cited = [source_id]
        draft = f"{strip_citations(draft)} [{cited[0]}]"
    if not shares_word(question, contents[cited[0]]):
        return nothing
    return Answer(text=draft, citations=cited, ms=ms(), decoder=decoder)


def strip_citations(text: str) -> str:
    """Text without its ``[id]`` citations."""
    return _CITATION.sub("", text).strip()


def shares_word(text: str, content: str) -> bool:
    """Whether text and a memory's content share a content word (``hints.tokenize`` keys, any case)."""
    return bool(_keys(text) & _keys(content))


def holder(text: str, ids: Sequence[int], contents: dict[int, str]) -> int | None:
    """The memory (of ``ids``, best first) sharing the most words with text (the earlier on ties); None: none shares one."""
    words = _keys(_CITATION.sub(" ", text)) or {w.lower() for w in answer_words(text)}
    overlap = [(len(words & (_keys(contents[i]) | {w.lower() for w in answer_words(contents[i])})), -r, i)
               for r, i in enumerate(ids)]
    best_overlap = max(overlap)
    return None if best_overlap[0] == 0 else best_overlap[2]
