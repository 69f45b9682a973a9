"""Candidate answers: the spans of recalled memories that could answer a question.

``question_kind`` sorts a question by what its answer looks like (``when``: a
date; ``count``: a number or duration; ``measure``: a number with a unit of
length or weight; ``who``: a name or a person;
``where``: a place; ``what``: any phrase). ``candidates`` enumerates, from
what the model was shown of each memory (exact text or hints), the spans of
that kind, each with the memory it comes from (so an answer can cite it) and
a few features an answerer ranks them by: the memory's rank, how many of the
question's words the memory holds, and how close the span stands to them.

Every candidate is made of the memory's own words, so an answer chosen among
them cannot invent a number or a name. The one rewriting is for dates: a
memory that states its own date ("(8 May, 2023) … yesterday") gives relative
expressions anchored on it ("the day before 8 May 2023", "the week before 8
May 2023") — the numbers still those of the memory.

What it does not do: run a model or rank the candidates (``llama``), or check
an answer (``base.check_answer``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hashmem.memory import hints as hintlib

from .base import answer_words

KINDS = ("when", "count", "measure", "who", "where", "what")
MAX_WORDS = 5  # words of a candidate span, at most (LoCoMo gold answers: ~3 words)

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})\s+({_MONTH}),?\s+(\d{{4}})\b", re.IGNORECASE)
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH})\s+(\d{{1,2}}),?\s+(\d{{4}})\b", re.IGNORECASE)
_MONTH_YEAR = re.compile(rf"\b({_MONTH}),?\s+(\d{{4}})\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(1\d\d\d|20\d\d)\b(?![.,]?\d)")
_LEADING_DATE = re.compile(r"^\s*\(([^)]{4,40})\)\s*")
_SPEAKER = re.compile(r"^\s*[A-Z][\w'’.\- ]{0,30}:\s")
# a speaker's label opening a line: a chat's "Caroline: …", a play's "ORLANDO<tab>…" (not "SCENE I<tab>…")
LABEL = re.compile(r"^[ \t]*(?!(?:SCENE|ACT|CHAPTER)\b)([A-Z][\w'’.\-]*(?: [A-Z][\w'’.\-]*){0,3})(?::[ \t]+|\t+)(?=\S)",
                   re.M)
_NUMBER_WORDS = ("once", "twice", "thrice", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "ten", "eleven", "twelve", "a few", "several", "dozen")
_UNITS = re.compile(r"^(?:times?|years?|months?|weeks?|days?|hours?|minutes?|kids|children|people|"
                    r"dogs?|cats?|pets?|books?|miles?|km|metres|meters|feet|percent|%)$", re.IGNORECASE)
_MEASURES = re.compile(r"^(?:m|km|cm|mm|metres?|meters?|kilometres?|kilometers?|feet|foot|ft|inch(?:es)?|"
                       r"miles?|yards?|kg|g|grams?|kilograms?|tons?|tonnes?|pounds?|lbs?|mph|km/h)$", re.I)
_OWNERS = ("my", "her", "his", "their", "our")
_CONTRACTION = re.compile(r"['’](?:m|re|ve|ll|d|s|t)$|n['’]t$")
_CHATTER = frozenset("""thanks thank wow cool awesome great glad sounds yeah yes yep nope hey hi hello oh ah
    congrats congratulations sure okay ok definitely totally absolutely really amazing lol haha omg""".split())
_TIME_WORD = re.compile(r"^(?:yesterday|today|tonight|tomorrow|week|weeks|weekend|month|months|year|years|ago|"
                        r"morning|evening|night|" + "|".join(MONTHS + WEEKDAYS) + r")$", re.I)
_PEOPLE = frozenset("""mother mom mum father dad parents sister brother siblings daughter son kids children
    husband wife partner friend friends family grandmother grandma grandfather grandpa aunt uncle cousin
    boyfriend girlfriend fiance fiancee team coach mentor teacher neighbor neighbour boss colleague""".split())
# relative expressions → the phrase of the answer, anchored on the memory's own date
_RELATIVE = (
    (re.compile(r"\byesterday\b|\blast night\b", re.I), "the day before {d}"),
    (re.compile(r"\blast weekend\b|\bthis past weekend\b", re.I), "the weekend before {d}"),
    (re.compile(r"\blast week\b|\ba week ago\b|\bthe other week\b", re.I), "the week before {d}"),
    (re.compile(r"\blast month\b|\ba month ago\b", re.I), "the month before {d}"),
    (re.compile(r"\blast year\b|\ba year ago\b", re.I), "the year before {d}"),
    (re.compile(r"\bnext month\b", re.I), "the month after {d}"),
    (re.compile(r"\bnext week\b", re.I), "the week after {d}"),
    (re.compile(r"\bnext year\b", re.I), "the year after {d}"),
    (re.compile(r"\b(?:this|next) weekend\b", re.I), "the weekend of {d}"),
    (re.compile(r"\btoday\b|\btonight\b|\bthis morning\b", re.I), "{d}"),
)
_LAST_WEEKDAY = re.compile(r"\b(?:last|this past|on)\s+(" + "|".join(WEEKDAYS) + r")\b", re.I)
_CLAUSE = re.compile(r"[.!?;:,()\"“”]+|\s[-–—]\s")
_QUESTION_ASKS = re.compile(r"^\s*(?:(?:and|so|then)\s+)?(\w+)(?:\s+(\w+))?", re.I)


@dataclass(frozen=True)
class Span:
    """One candidate answer.

    Attributes:
        text: the answer as it would be given (the memory's words).
        source: id of the memory it comes from.
        rank: that memory's position among the hits (0: best).
        overlap: share of the question's content words the memory holds (0–1).
        near: the question's words within a few words of the span, in the memory (0–1).
        kind: the question kind it was made for.
    """

    text: str
    source: int
    rank: int
    overlap: float
    near: float
    kind: str


def question_kind(question: str) -> str:
    """What the answer looks like: ``when``, ``count``, ``measure`` (a number with a unit), ``who``, ``where``
    or ``what``."""
    q = question.lower()
    m = _QUESTION_ASKS.match(q)
    first, second = (m.group(1), m.group(2) or "") if m else ("", "")
    if first == "when" or re.search(r"\b(?:what|which) (?:year|month|day|date|time)\b|\bhow long ago\b", q):
        return "when"
    if first == "how" and second in ("tall", "high", "deep", "wide", "heavy", "big", "large", "far", "fast"):
        return "measure"
    if first == "how" and second in ("many", "much", "long", "old", "often"):
        return "count"
    if first in ("who", "whom", "whose") or re.search(r"\bwith whom\b|\bwho\b", q):
        return "who"
    if first == "where" or re.search(r"\b(?:which|what) (?:city|country|state|place|town|store|restaurant)\b", q):
        return "where"
    return "what"


def speaker_name(label: str) -> str:
    """A speaker label as an answer: "ORLANDO" → "Orlando", "DUKE SENIOR" → "Duke Senior", "Caroline" as is."""
    label = label.strip()
    return label.title() if label.isupper() and len(label) > 1 else label


def stem(word: str) -> str:
    """A word's comparison key: lowercase, no possessive, its first five letters."""
    w = word.lower().strip("'’")
    w = re.sub(r"['’]s$", "", w)
    return w[:5] if len(w) > 5 else w


def question_terms(question: str) -> set[str]:
    """Stems of the question's content words."""
    return {stem(w) for w in answer_words(question) if w.lower() not in hintlib.STOPWORDS and len(w) > 1}


def anchor_date(text: str) -> str | None:
    """The date a memory states for itself (a leading "(8 May, 2023)"), as "8 May 2023"."""
    m = _LEADING_DATE.match(text)
    head = m.group(1) if m else text[:60]
    for pat, fmt in ((_DAY_MONTH_YEAR, "{0} {1} {2}"), (_MONTH_DAY_YEAR, "{1} {0} {2}")):
        d = pat.search(head)
        if d:
            return fmt.format(*d.groups())
    return None


def _body(text: str) -> str:
    """The memory without its leading "(date)" and with "keywords:" removed."""
    return _LEADING_DATE.sub("", text).replace("keywords:", " ")


def date_spans(text: str) -> list[tuple[str, int]]:
    """Dates a memory gives, with the character offset they stand at: explicit ones, then relative ones."""
    out: list[tuple[str, int]] = []
    body = _body(text)
    offset = len(text) - len(body) if text.endswith(body) else 0
    for pat, fmt in ((_DAY_MONTH_YEAR, "{0} {1} {2}"), (_MONTH_DAY_YEAR, "{1} {0} {2}"),
                     (_MONTH_YEAR, "{0} {1}")):
        for m in pat.finditer(body):
            out.append((fmt.format(*m.groups()), offset + m.start()))
    for m in _YEAR.finditer(body):
        if not any(m.group(0) in d for d, _ in out):
            out.append((m.group(0), offset + m.start()))
    anchor = anchor_date(text)
    if anchor:
        for pat, phrase in _RELATIVE:
            for m in pat.finditer(body):
                out.append((phrase.format(d=anchor), offset + m.start()))
        for m in _LAST_WEEKDAY.finditer(body):
            out.append((f"the {m.group(1).lower()} before {anchor}", offset + m.start()))
        out.append((anchor, -1))  # the memory's own date, when nothing closer says otherwise
    return out


def _words_with_offsets(text: str) -> list[tuple[str, int, int, bool]]:
    """(word, clause number, character offset, is a name) of a text's answer words.

    A name is a capitalized word that does not open a sentence (nor "I").
    """
    out = []
    clause = 0
    pos = 0
    opens = True
    for piece in re.split(f"({_CLAUSE.pattern})", text):
        if not piece:
            continue
        if _CLAUSE.fullmatch(piece):
            clause += 1
            opens = opens or bool(re.search(r"[.!?:;]", piece))
        else:
            for m in re.finditer(r"\S+", piece):
                raw = m.group(0)
                w = raw.strip(".,;:!?'’\"“”-()[]")
                if w:
                    name = w[0].isupper() and not opens and w != "I" and w.lower() not in hintlib.STOPWORDS
                    out.append((w, clause, pos + m.start(), name))
                    opens = raw.rstrip("'’\"”)").endswith((".", "!", "?", ":"))
        pos += len(piece)
    return out


def _kind_ok(kind: str, words: Sequence[str], names: Sequence[bool]) -> bool:
    low = [w.lower() for w in words]
    if kind == "count":
        return (any(w[0].isdigit() for w in words) or low[0] in _NUMBER_WORDS) and (
            len(words) == 1 or (len(words) <= 3 and bool(_UNITS.match(low[-1]) or low[-1] == "ago")))
    if kind == "measure":
        return len(words) == 2 and words[0][0].isdigit() and bool(_MEASURES.match(words[1]))
    if kind == "who":
        if low[-1] in _PEOPLE:
            return len(words) <= 2
        return len(words) <= 3 and all(names) and not set(low) & set(MONTHS + WEEKDAYS)
    if kind == "where":
        caps = [w for w, n in zip(words, names, strict=True) if n and w.lower() not in MONTHS + WEEKDAYS]
        return len(caps) == len(words) or (len(words) <= 3 and bool(caps)) or low[-1] in (
            "park", "beach", "gym", "shelter", "church", "school", "museum", "lake", "mountains", "store",
            "studio", "office", "home", "library", "cafe", "restaurant", "center", "centre", "city")
    return True


def candidates(question: str, contents: Mapping[int, str], order: Sequence[int] | None = None,
               *, max_words: int = MAX_WORDS) -> list[Span]:
    """The spans of the memories that could answer the question, without repeats.

    Args:
        question: the question.
        contents: what the model was shown of each memory (exact text, or "keywords: …"), by id.
        order: the memories' ids best first (default: the order of ``contents``).
        max_words: the longest span, in words.

    Returns:
        Spans made of one memory's words (dates may be anchored on the memory's own date);
        the first memory holding a span is its source.
    """
    kind = question_kind(question)
    asked = question_terms(question)
    seen: dict[str, Span] = {}
    for rank, mid in enumerate(order if order is not None else contents):
        for span in memory_spans(kind, asked, contents[mid], mid, rank, max_words=max_words):
            seen.setdefault(span.text.lower(), span)
    return list(seen.values())


def memory_spans(kind: str, asked: set[str], text: str, mid: int, rank: int, *,
                 max_words: int = MAX_WORDS) -> list[Span]:
    """The candidate spans of one memory for a question of ``kind`` whose content-word stems are ``asked``.

    A memory shown as hints ("keywords: a, b, c", in passage order) is read as one
    run of words, each capitalized hint a name.
    """
    keywords = text.startswith("keywords:")
    words = _words_with_offsets(text[len("keywords:"):].replace(",", " ") if keywords else text)
    body = _body(text)
    body_start = len(text) - len(body) if text.endswith(body) and not keywords else 0
    speaker = _SPEAKER.match(body) if not keywords else None
    labels = [] if keywords else [(body_start + m.start(1), body_start + m.end(), m.group(1))
                                  for m in LABEL.finditer(body)]
    if speaker:  # "Caroline: …": who speaks is not what was said
        labels.append((body_start, body_start + speaker.end(), speaker.group(0).strip().rstrip(":")))
        body_start += speaker.end()
    if labels:
        words = [w for w in words if w[2] >= body_start and not any(a <= w[2] < b for a, b, _ in labels)]
    if keywords:
        words = [(w, c, at, w[0].isupper() and w != "I") for w, c, at, _ in words]
    stems = [stem(w[0]) for w in words]
    overlap = len(asked & set(stems)) / len(asked) if asked else 0.0
    hit_pos = [words[i][2] for i, s in enumerate(stems) if s in asked]

    def near(at: int) -> float:
        if not hit_pos or at < 0:
            return 0.0
        gap = min(abs(at - p) for p in hit_pos)
        return 1.0 / (1.0 + gap / 40.0)

    if kind == "when":
        return [Span(d, mid, rank, overlap, near(at), kind) for d, at in date_spans(text)]
    out = []
    if kind == "who":  # who speaks may be who did it: the speakers' names are candidates too
        starts = sorted(a for a, _, _ in labels)
        for at, end, label in labels:
            name = speaker_name(label)
            upto = next((a for a in starts if a > at), len(text))
            said = any(end <= p < upto for p in hit_pos)  # the question's words in the speaker's own lines
            if not {stem(w) for w in name.split()} & asked:
                out.append(Span(name, mid, rank, overlap, 1.0 if said else near(at), kind))
    for i in range(len(words)):
        if words[i][2] < body_start:
            continue
        for n in range(1, max_words + 1):
            chunk = words[i : i + n]
            if len(chunk) < n or chunk[-1][1] != chunk[0][1]:
                break
            ws = [w[0] for w in chunk]
            first, last = ws[0].lower(), ws[-1].lower()
            if (first in hintlib.STOPWORDS and not (kind == "who" and first in _OWNERS)) or \
                    last in hintlib.STOPWORDS or (len(last) < 2 and not last.isdigit()):
                continue
            if stem(ws[0]) in asked or stem(ws[-1]) in asked:
                continue  # the question's own words at the edge: not what it asks
            if all(stem(w) in asked or w.lower() in hintlib.STOPWORDS for w in ws):
                continue
            if ws[-1].endswith(("'s", "’s")) or _CONTRACTION.search(first) or first in _CHATTER:
                continue  # "I'm so excited", "Thanks Tim", "Sounds great": talk, not an answer
            if kind in ("what", "who", "where") and (any(_TIME_WORD.match(w) for w in ws) or
                                                     ws[0][0].isdigit()):
                continue  # "last week", "2023 …" answer when, not what
            if _kind_ok(kind, ws, [w[3] for w in chunk]):
                out.append(Span(" ".join(ws), mid, rank, overlap, near(chunk[0][2]), kind))
    return out
