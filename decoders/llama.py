"""A decoder over llama-cpp-python: best-of-N reconstructions, and answers with citations.

Model: any GGUF chat model, by default SmolLM2-135M-Instruct, loaded once per
process (``llamacpp``). By default (``threads=None``) its llama.cpp thread count
is re-decided at the start of every reconstruction and every question
(``threads.pick``), on the one loaded model; a given ``threads`` stays fixed.

``reconstruct(record)``: a prompt of the record's hints in passage order asks
the model to put back the small words the hints dropped. In the default
``infill`` style the drafts are constrained (``infill``): the hints come out
verbatim and in order, and between them the model only chooses among
``FILLERS`` (the, of, and, …), so a draft cannot invent a number or a name; the
``free`` style lets it write unconstrained prose (measured worse: docs/recall.md). ``candidates``
drafts are drawn with seeds ``seed, seed + 1, …``; each is re-embedded by the store's embedder and
scored by ``base.score_candidates`` (cosine to the stored int8 vector, Hamming
to the stored code, a penalty per number or name the hints lack); the best one
is returned with its fidelity, never an unchecked draw. The same record, model
and seed give the same text (the KV cache is reset per record).

``ask(question, hits)``: what is shown of the recalled passages (exact text on ``text``/``llm``
stores, else the hints; for ``extract``/``span`` their pieces nearest the question under a token cap,
``focus``) goes into the prompt (``prompts``) as delimited data blocks, tokenized *without* special
tokens so that stored text can never close or open a chat turn (``chat``). A memory written as
instructions to the model (``base.looks_like_orders``) is left out.
Three answer styles (``ask_style``), chosen by measurement (docs/ask.md):

- ``extract`` (default): the model does not write; it scores the candidate spans of the memories
  that fit the question's kind (``spans``: dates, numbers, names, speakers, phrases) by its
  log-probability of each as the whole reply, from the cached prompt, plus the span's nearness to the
  question's words and its memory's rank (dates: those two only); the answer cites its memory.
- ``span``: the model writes a short answer under a grammar that admits only words of one memory
  (not those of the question; ``grammar``), so it cannot invent a word.
- ``cite``: free prose citing ``[id]``s (the earliest default).

Either way the answer is checked before anyone sees it (``on_token`` receives
only the checked answer): it names no number or name found in neither the
memories nor the question, the question's own numbers and names occur in the
memories, and the cited memory shares a word with the question; otherwise it
becomes ``NOT_FOUND``. A grounded answer that forgot its citation is given the
citation of the memory that holds it rather than rejected.

What it does not do: choose hits (``memory.Memory.search``) or train anything; loading the model
(``llamacpp``), prompts (``prompts``), tokens and log-probabilities (``chat``), infill drafts
(``infill``) and the span grammar (``grammar``) are their modules'.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from hashmem.memory import Hit, Memory, Record

from . import chat, focus, replies, spans
from . import summary as summaries
from . import threads as threadpick
from .base import (
    Answer,
    Decoder,
    OnToken,
    Reconstruction,
    answerable,
    best,
    check_answer,
    looks_like_orders,
    memory_blocks,
    memory_content,
    not_found,
    score_candidates,
)
from .grammar import SPAN_WORDS, span_grammar
from .infill import infill_drafts
from .llamacpp import adapt_threads, import_llama_cpp, load_model, resolve_model
from .prompts import (
    ASK_SYSTEM,
    SUMMARY_SYSTEM,
    cite_turn,
    reconstruction_turn,
    summary_turn,
)

DEFAULT_CANDIDATES = 2  # chosen by measurement: 2, 3 and 5 tie on fidelity (docs/recall.md)
DEFAULT_WORDS = 60  # passage length asked for when the record does not tell its own
EXPAND_TERMS = 0  # nearest lexicon terms offered as fillers: +0.004 cosine, not worth a per-process lexicon embedding (docs/recall.md)

STYLES = ("infill", "free")
ASK_STYLES = ("extract", "span", "cite")
# extract: a candidate's score = NEAR_WEIGHT·near − RANK_WEIGHT·rank (+ the model's mean token
# log-probability of it as the whole reply); chosen on 46 LoCoMo questions (docs/ask.md §3)
NEAR_WEIGHT = 2.0
RANK_WEIGHT = 0.3
SHORTLIST = 16  # candidates the model scores in full (the rest by their first token only)
SUMMARY_CHARS = 500  # characters of each memory a summary's prompt shows (the prompt is most of its time)
SUMMARY_TOKENS = 120  # cap on a summary draft


class LlamaDecoder(Decoder):
    """Reconstructs passages and answers questions with a local llama.cpp model.
    Args:
        memory: the open store.
        model: a GGUF path (default ``$HASHMEM_GGUF``, else SmolLM2-135M-Instruct).
        seed: base seed; candidate i is drawn with ``seed + i``.
        candidates: drafts drawn per reconstruction (N of best-of-N).
        temperature: sampling temperature of the drafts.
        max_tokens: cap on a draft's length (default from the passage's length).
        threads: a fixed llama.cpp thread count; default None: re-decided per reconstruction
            and per question from ``$HASHMEM_LLM_THREADS`` or the idle cores (``threads.pick``).
        expand_terms: lexicon terms nearest to the stored vector added to the prompt.
        style: ``infill`` (default): drafts are constrained to the hints in order,
            the model choosing only small words (``infill.FILLERS``) between them, so a
            draft invents nothing; ``free``: unconstrained prose.
        ask_style: ``extract`` (default): the best-scored candidate span of the
            memories (``spans``); ``span``: short answers made of the memories'
            words under a grammar; ``cite``: free prose citing ``[id]``s.
        summary_method: how ``summarize`` works by default (``summary``: ``extractive`` or ``model``).
        prompt_tokens: cap on an ``extract``/``span`` prompt in tokens (the pieces of each memory nearest
            the question, ``focus``); None: whole memories, up to 1,200 characters each (as before).

    Raises:
        ImportError: llama-cpp-python is not installed.
        ModelLoadError: the model cannot be found or loaded (raised on first use).
    """

    name = "llama"

    def __init__(
        self,
        memory: Memory,
        *,
        model: str | os.PathLike | None = None,
        seed: int = 0,
        candidates: int = DEFAULT_CANDIDATES,
        temperature: float = 0.7,
        max_tokens: int | None = None,
        threads: int | None = None,
        expand_terms: int = EXPAND_TERMS,
        style: str = "infill",
        ask_style: str = "extract",
        summary_method: str = summaries.DEFAULT_METHOD,
        prompt_tokens: int | None = focus.PROMPT_TOKENS,
    ) -> None:
        super().__init__(memory)
        if style not in STYLES:
            raise ValueError(f"style {style!r} is not supported; use {' or '.join(STYLES)}")
        if ask_style not in ASK_STYLES:
            raise ValueError(f"ask_style {ask_style!r} is not supported; use {' or '.join(ASK_STYLES)}")
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        import_llama_cpp()  # fail now, not on first use, so a caller can fall back
        if threads is None:
            threadpick.env_threads()  # a bad $HASHMEM_LLM_THREADS fails here, not mid-answer
        self.model_path = resolve_model(model)
        self.seed = seed
        self.candidates = candidates
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.threads = threads
        self.expand_terms = expand_terms
        self.style = style
        self.ask_style = ask_style
        self.summary_method = summaries.check_method(summary_method)
        self.prompt_tokens = prompt_tokens
        self.last_prompt_tokens = 0  # tokens of the last extract/span question's prompt
        self._lexicon_cache: tuple[int, list[str], np.ndarray] | None = None

    @property
    def llm(self):
        return load_model(self.model_path, threads=self.threads)

    # -- prompts -----------------------------------------------------------------------

    def _prompt_tokens(self, system: str, user_parts: Sequence[tuple[str, bool]]) -> list[int]:
        """Chat-formatted prompt tokens (``chat.prompt_tokens``): parts flagged False are data, without special tokens.

        Every use of the model (a reconstruction, a question) starts with its
        prompt, so an adaptive decoder re-decides its thread count here.
        """
        llm = self.llm
        if self.threads is None:
            adapt_threads(llm, None)
        return chat.prompt_tokens(llm, system, user_parts)

    def reconstruction_prompt(self, record: Record) -> list[int]:
        words = _target_words(record)
        terms = list(record.hints)
        if self.expand_terms and self.style == "free":
            terms += [t for t in self.nearest_terms(record, self.expand_terms) if t not in terms]
        system, parts = reconstruction_turn(terms, style=self.style, words=words)
        return self._prompt_tokens(system, parts)

    def nearest_terms(self, record: Record, n: int) -> list[str]:
        """The n lexicon words whose embeddings lie nearest to the record's stored vector."""
        lex = self.memory.lexicon
        if self._lexicon_cache is None or self._lexicon_cache[0] != len(lex.terms):
            keep = [i for i, t in enumerate(lex.terms) if lex.df[i] >= 2 and t.islower() and len(t) > 2]
            keep = sorted(keep, key=lambda i: -lex.df[i])[:20_000]
            terms = [lex.terms[i] for i in keep]
            self._lexicon_cache = (len(lex.terms), terms, self.memory.embedder.encode(terms, progress=False))
        _, terms, emb = self._lexicon_cache
        if not terms:
            return []
        stored = self.memory.quantizer.decode(record.qvec[None, :])[0]
        order = np.argsort(-(emb @ stored), kind="stable")
        have = {h.lower() for h in record.hints}
        return [terms[i] for i in order[: n + len(have)] if terms[i] not in have][:n]

    # -- reconstruct -------------------------------------------------------------------

    def infill(self, prompt: list[int], hints: Sequence[str], seeds: Sequence[int], *,
               extra: Sequence[str] = ()) -> list[str]:
        """Constrained drafts, one per seed: the hints in order, the model choosing the small words between
        them (``infill.infill_drafts`` at this decoder's temperature)."""
        return infill_drafts(self.llm, prompt, hints, seeds, temperature=self.temperature, extra=extra)

    def _last_logits(self) -> np.ndarray:
        """Logits [n_vocab] of the last evaluated token."""
        return chat.last_logits(self.llm)

    def draft(self, prompt: list[int], *, seed: int, max_tokens: int, on_token: OnToken | None = None,
              temperature: float | None = None) -> str:
        """One completion of a token prompt (streamed to on_token when given)."""
        temp = self.temperature if temperature is None else temperature
        kwargs = dict(max_tokens=max_tokens, temperature=temp, top_p=0.95, top_k=40, min_p=0.05,
                      repeat_penalty=1.15, seed=seed)
        if on_token is None:
            out = self.llm.create_completion(prompt, **kwargs)
            return out["choices"][0]["text"].strip()
        pieces = []
        for chunk in self.llm.create_completion(prompt, stream=True, **kwargs):
            piece = chunk["choices"][0]["text"]
            pieces.append(piece)
            on_token(piece)
        return "".join(pieces).strip()

    def reconstruct(self, record: Record | int) -> Reconstruction:
        """The best of ``candidates`` drafts from the record's hints; exact in a ``text``-tier store."""
        started = time.perf_counter()
        record = self.record(record)
        if record.text is not None:
            return self.exact(record, started)
        if not record.hints:
            return Reconstruction(id=record.id, text="", fidelity=0.0, exact=False, candidates_tried=0,
                                  ms=(time.perf_counter() - started) * 1000, decoder=self.name)
        prompt = self.reconstruction_prompt(record)
        seeds = [self.seed + i for i in range(self.candidates)]
        self.llm.reset()  # same record + seed → same text, whatever ran before
        if self.style == "infill":
            extra = self.nearest_terms(record, self.expand_terms) if self.expand_terms else []
            drafts = self.infill(prompt, record.hints, seeds, extra=extra)
        else:
            max_tokens = self.max_tokens or int(np.clip(_target_words(record) * 1.5, 24, 200))
            drafts = [self.draft(prompt, seed=s, max_tokens=max_tokens) for s in seeds]
        drafts = [_trim(d) or "" for d in drafts]
        scored = score_candidates(self.memory, record, [d or "." for d in drafts])
        top = best(scored)
        return Reconstruction(id=record.id, text=top.text, fidelity=top.cosine, exact=False,
                              candidates_tried=len(scored), ms=(time.perf_counter() - started) * 1000,
                              decoder=self.name, hamming=top.hamming, unsupported=top.unsupported)

    # -- ask ---------------------------------------------------------------------------

    def ask(self, question: str, hits: Sequence[Hit], *, on_token: OnToken | None = None,
            max_tokens: int = 96) -> Answer:
        """Answer from the hits only, citing them as ``[id]``; ``NOT_FOUND`` when they do not hold it.

        Args:
            question: the question.
            hits: recalled memories (from ``Memory.search``); only those scoring at
                least ``ASK_MIN_SCORE`` and not written as orders are shown to the model.
            on_token: called once with the checked answer (never with an unchecked draft).
            max_tokens: cap on the answer's length (``cite`` style).
        """
        started = time.perf_counter()
        relevant = [h for h in answerable(hits) if not looks_like_orders(memory_content(self.memory, h))]
        if not relevant or not question.strip():
            answer = not_found(started, self.name)
        else:
            contents = {h.id: memory_content(self.memory, h) for h in relevant}
            if self.ask_style in ("extract", "span"):
                prompt, shown = self.question_prompt(question, relevant, contents)
                shown_hits = [h for h in relevant if h.id in shown]
                draft_of = self._extract_draft if self.ask_style == "extract" else self._span_draft
                draft = draft_of(question, shown_hits, shown, prompt) if shown_hits else ""
            else:
                prompt = self._prompt_tokens(ASK_SYSTEM, cite_turn(memory_blocks(self.memory, relevant), question))
                self.llm.reset()
                draft = self.draft(prompt, seed=self.seed, max_tokens=max_tokens, temperature=0.0)
            answer = check_answer(draft, question, relevant, contents, started=started, decoder=self.name)
        if on_token is not None:
            on_token(answer.text)
        return answer

    def summarize(self, query: str, hits: Sequence[Hit], *, max_sentences: int = summaries.MAX_SENTENCES,
                  method: str | None = None) -> summaries.Summary:
        """A short summary of what the hits hold about the query, each sentence citing its memories.

        Args:
            query: what to summarize about.
            hits: recalled memories (from ``Memory.search``), best first.
            max_sentences: sentences, at most.
            method: ``extractive`` (the top sentences) or ``model`` (written, then checked);
                default this decoder's ``summary_method``.
        """
        method = self.summary_method if method is None else summaries.check_method(method)
        if method == "extractive":
            return summaries.extractive(self.memory, query, hits, max_sentences=max_sentences, decoder=self.name)
        return summaries.from_model(self.memory, query, hits, self.summary_draft, max_sentences=max_sentences,
                                    decoder=self.name)

    def summary_draft(self, query: str, hits: Sequence[Hit], sentences: int) -> str:
        """The model's unchecked summary of the hits about the query (greedy, ``SUMMARY_SYSTEM``)."""
        blocks = memory_blocks(self.memory, hits, max_chars=SUMMARY_CHARS)
        prompt = self._prompt_tokens(SUMMARY_SYSTEM, summary_turn(blocks, query, sentences=sentences))
        self.llm.reset()
        return self.draft(prompt, seed=self.seed, max_tokens=SUMMARY_TOKENS, temperature=0.0)

    def question_prompt(self, question: str, hits: Sequence[Hit], contents: dict[int, str]
                        ) -> tuple[list[int], dict[int, str]]:
        """The prompt of an ``extract``/``span`` question and what it shows of each memory (``focus.question_prompt``)."""
        if self.threads is None:
            adapt_threads(self.llm, None)
        prompt, shown = focus.question_prompt(self.llm, self.memory, question, hits, contents, cap=self.prompt_tokens)
        self.last_prompt_tokens = len(prompt)
        return prompt, shown

    def _extract_draft(self, question: str, hits: Sequence[Hit], contents: dict[int, str],
                       prompt: list[int]) -> str:
        """The best candidate span of the memories (``spans.candidates``), citing its memory.

        A date question is answered from the dates of the memories (their own
        date, anchored relative expressions, explicit dates) by where they stand:
        near the question's words, in a well-ranked memory. Any other question's
        candidates are shortlisted by the model's probability of their first token
        and their nearness; the ``SHORTLIST`` best are scored by the model's mean
        log-probability of the span as the whole reply (prompt: the memories and
        the question, as for ``span``: ``question_prompt``) plus nearness and rank.
        """
        cands = spans.candidates(question, contents, [h.id for h in hits])
        if not cands:
            return ""
        heuristic = [NEAR_WEIGHT * c.near - RANK_WEIGHT * c.rank for c in cands]
        if spans.question_kind(question) == "when":
            scores = heuristic
        else:
            first = self.first_token_logprobs(prompt)
            toks = [self.llm.tokenize(c.text.encode("utf-8"), add_bos=False, special=False) for c in cands]
            short = sorted(range(len(cands)), key=lambda i: -(first[toks[i][0]] + NEAR_WEIGHT * cands[i].near))
            scores, short = [float("-inf")] * len(cands), short[:SHORTLIST]
            for i, lp in zip(short, self.reply_logprobs([toks[i] for i in short], first), strict=True):
                scores[i] = lp / (len(toks[i]) + 1) + heuristic[i]
        top = cands[int(np.argmax(scores))]
        return f"{top.text} [{top.source}]"

    def _span_draft(self, question: str, hits: Sequence[Hit], contents: dict[int, str], prompt: list[int]) -> str:
        """A short answer whose every word is a word of the memories (and not of the question).

        Greedy decoding under a GBNF grammar: a content word of one memory first, then
        up to ``SPAN_WORDS - 1`` more words of the same memory, then a newline (an answer
        never stitches words of two memories together).
        """
        import llama_cpp

        gbnf = span_grammar(question, [contents[h.id] for h in hits])
        if gbnf is None:
            return ""
        grammar = llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
        self.llm.reset()
        out = self.llm.create_completion(prompt, max_tokens=6 * SPAN_WORDS, temperature=0.0, grammar=grammar,
                                         seed=self.seed)
        words = out["choices"][0]["text"].split()
        return " ".join(w for i, w in enumerate(words) if i == 0 or w != words[i - 1])  # "Tim Tim Tim" → "Tim"

    def first_token_logprobs(self, prompt: list[int]) -> np.ndarray:
        """Log-probabilities [n_vocab] of the reply's first token (``replies``; a question's head kept)."""
        return replies.scorer(self.llm).first(prompt, keep=focus.shared_head(self.llm, prompt))

    def reply_logprobs(self, candidates: Sequence[Sequence[int]], first: np.ndarray) -> list[float]:
        """Log-probability of each candidate's tokens, then the end of the turn, as the whole reply to the
        prompt ``first_token_logprobs`` just evaluated (``replies``: all candidates in one batch)."""
        return replies.scorer(self.llm).replies(candidates, first)


def _target_words(record: Record) -> int:
    """Words of the original passage: from its character span when the metadata has one."""
    start, end = record.metadata.get("start"), record.metadata.get("end")
    if isinstance(start, int) and isinstance(end, int) and end > start:
        return int(np.clip(round((end - start) / 6.3), 8, 160))
    return DEFAULT_WORDS


def _trim(text: str) -> str:
    """A draft without a dangling unfinished sentence (when a finished one exists)."""
    text = text.strip()
    cut = max(text.rfind(". "), text.rfind(".\n"))
    if text and text[-1] not in ".!?\"'”)" and cut > len(text) // 2:
        return text[: cut + 1]
    return text
