"""A decoder with no language model: the hints laid out as text.

``reconstruct`` writes a record's hints in passage order (a first capital and a
final period), and scores that text like any candidate, so its fidelity is
comparable with the llama decoder's. ``ask`` quotes the sentence of the
relevant memories that shares the most words with the question (``text`` tier)
or the best memory's hints, citing it.

It is the fallback when llama-cpp-python is not installed, and the baseline the
evaluation compares the llama decoder against. It never invents anything: every
word it prints was stored.

What it does not do: write prose or paraphrase.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from hashmem.memory import Hit, Record
from hashmem.memory import hints as hintlib

from . import summary
from .base import (
    Answer,
    Decoder,
    OnToken,
    Reconstruction,
    answerable,
    layout,
    memory_content,
    not_found,
    score_candidates,
)

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _content_words(text: str) -> set[str]:
    return {t.key.lower() for t in hintlib.tokenize(text)}


class ExtractiveDecoder(Decoder):
    """Hints laid out as text; quotes stored sentences to answer. No LLM.

    Args:
        memory: the open store.
    """

    name = "extractive"

    def reconstruct(self, record: Record | int) -> Reconstruction:
        """The hints in passage order as one line, scored against the stored vector and code."""
        started = time.perf_counter()
        record = self.record(record)
        if record.text is not None:
            return self.exact(record, started)
        text = layout(record.hints)
        if not text:
            return Reconstruction(id=record.id, text="", fidelity=0.0, exact=False, candidates_tried=0,
                                  ms=(time.perf_counter() - started) * 1000, decoder=self.name)
        s = score_candidates(self.memory, record, [text])[0]
        return Reconstruction(id=record.id, text=text, fidelity=s.cosine, exact=False, candidates_tried=1,
                              ms=(time.perf_counter() - started) * 1000, decoder=self.name,
                              hamming=s.hamming, unsupported=s.unsupported)

    def summarize(self, query: str, hits: Sequence[Hit], *, max_sentences: int = summary.MAX_SENTENCES,
                  method: str | None = None) -> summary.Summary:
        """The top sentences of the hits about the query, each citing its memory (``summary.extractive``).

        Raises:
            ValueError: ``method="model"``: this decoder has no model.
        """
        if method not in (None, "extractive"):
            raise ValueError(f"the extractive decoder summarizes by extraction only, not {method!r}; "
                             "install llama-cpp-python for the model's summary")
        return summary.extractive(self.memory, query, hits, max_sentences=max_sentences, decoder=self.name)

    def ask(self, question: str, hits: Sequence[Hit], *, on_token: OnToken | None = None) -> Answer:
        """Quote the stored sentence closest to the question, with its ``[id]``.

        Only hits scoring at least ``ASK_MIN_SCORE`` count; with none, or when no
        relevant memory shares a word with the question, the answer is ``NOT_FOUND``.
        """
        started = time.perf_counter()
        relevant = answerable(hits)
        q = _content_words(question)
        best: tuple[int, float, str, int] | None = None  # (overlap, hit score, sentence, id)
        for h in relevant:
            for sentence in _SENTENCE.split(memory_content(self.memory, h)):
                overlap = len(q & _content_words(sentence))
                if overlap and (best is None or (overlap, h.score) > best[:2]):
                    best = (overlap, h.score, sentence.strip(), h.id)
        if best is None:
            answer = not_found(started, self.name)
        else:
            text = f"{best[2]} [{best[3]}]"
            answer = Answer(text=text, citations=[best[3]], ms=(time.perf_counter() - started) * 1000,
                            decoder=self.name)
        if on_token is not None:
            on_token(answer.text)
        return answer
