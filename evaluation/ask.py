"""Question answering over a LoCoMo-style dataset: the measurements behind ``hashmem eval-ask``.

The dataset is the retrieval view of LoCoMo (``corpus.jsonl``: one dialogue
turn per line with ``_id``, ``text``, ``conv``, ``date_time``; ``queries.jsonl``:
``_id``, ``text``, ``conv``, ``category``, ``answer``, ``evidence_raw``). Every
turn is stored, as ``"(date) text"`` (temporal questions need the session
date; its time of day is left out), in a temporary store of the chosen fidelity, one namespace per
conversation; each question searches only its conversation (top ``k``) and is
answered by a decoder from those hits.

Scores (categories 1–4, the answerable ones; category 5 questions are
unanswerable by design and only their "not found" share is reported):

- ``f1``: token F1 between answer and gold after the LoCoMo paper's
  normalization (lowercase, commas and punctuation removed, articles a/an/the
  and "and" dropped, whitespace collapsed; no stemming, which the paper adds);
  the answer's ``[id]`` citations are removed first. ``exact_match`` likewise.
- ``not_found``: share of answers that say the memories do not hold it.
- ``citation_precision``: cited records among the question's gold evidence
  turns, over all citations (questions that cite nothing are left out).
- ``invented``: answers naming a number or name found in neither the retrieved
  memories nor the question (should be 0: the guard turns those into not found).
- ``ms_p50`` / ``ms_p90``: wall time of ``ask``.
- ``containment@k`` (no model): share of questions whose every gold answer
  token appears in what the store returns for the top k — the exact text
  (``text``/``llm`` tiers) and the hints — i.e. the information a tier keeps.

What it does not do: evaluate retrieval ranking (``memory.eval``) or recall
fidelity (``evaluate``).
"""

from __future__ import annotations

import json
import re
import string
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hashmem.decoders.base import NOT_FOUND, invented_terms, memory_content
from hashmem.memory import InputError, Memory
from hashmem.memory.progress import progress_bar

ANSWERABLE = (1, 2, 3, 4)
_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_CITE = re.compile(r"\s*\[\d+\]")


def _day(date_time: str) -> str:
    """The session's date without its time of day ("1:56 pm on 8 May, 2023" → "8 May, 2023")."""
    return date_time.split(" on ", 1)[-1]


def normalize_answer(text: str) -> str:
    """The LoCoMo paper's answer normalization (without stemming)."""
    text = str(text).replace(",", "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """Token F1 of normalized prediction and gold."""
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def contains(text: str, gold: str) -> bool:
    """Whether every normalized gold token occurs among text's normalized tokens."""
    have = set(normalize_answer(text).split())
    want = normalize_answer(gold).split()
    return bool(want) and all(w in have for w in want)


def load(dataset_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(turns, questions) of a LoCoMo retrieval view, or of a book set (``books.json`` instead of corpus.jsonl).

    Raises:
        InputError: corpus.jsonl (or books.json, or a book it names) or queries.jsonl is missing, or
            questions lack ``conv``/``answer``.
    """
    root = Path(dataset_dir)
    books = root / "books.json"
    files = [books if books.is_file() else root / "corpus.jsonl", root / "queries.jsonl"]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{root} lacks {', '.join(missing)}; give a LoCoMo-style dataset directory")
    questions = [json.loads(line) for line in open(files[1], encoding="utf-8") if line.strip()]
    turns = book_passages(books) if books.is_file() else \
        [json.loads(line) for line in open(files[0], encoding="utf-8") if line.strip()]
    if not questions or any("conv" not in q or "answer" not in q for q in questions):
        raise InputError(f"{files[1]}: every question needs 'conv' and 'answer' fields (LoCoMo layout)")
    return turns, questions


def book_passages(books: Path) -> list[dict]:
    """The passages of the books a ``books.json`` names (``[{"conv", "path"}]``, paths relative to it),
    chunked as ``hashmem add`` chunks a file; ids ``<conv>:<n>``."""
    from hashmem.memory.chunk import chunk_stream
    from hashmem.memory.sources import read_pieces

    out = []
    for book in json.loads(books.read_text(encoding="utf-8")):
        path = books.parent / book["path"]
        if not path.is_file():
            raise InputError(f"{books}: book {book['conv']!r} not found at {path}")
        for n, p in enumerate(chunk_stream(read_pieces(path))):
            out.append({"_id": f"{book['conv']}:{n}", "text": p.text, "conv": book["conv"]})
    return out


def pick(questions: Sequence[dict], limit: int | None) -> list[dict]:
    """``limit`` questions spread evenly over the file (all when None)."""
    if not limit or limit >= len(questions):
        return list(questions)
    idx = np.linspace(0, len(questions) - 1, limit).round().astype(int)
    return [questions[i] for i in dict.fromkeys(idx.tolist())]


def evaluate(
    dataset_dir: str | Path,
    *,
    fidelity: str = "hints",
    k: int = 5,
    limit: int | None = None,
    decoder: str = "llama",
    model: str | None = None,
    decoder_options: dict | None = None,
    progress: bool = False,
    details: list | None = None,
) -> dict:
    """Answer the dataset's questions from a store of its turns and score them.

    Args:
        dataset_dir: LoCoMo retrieval view (corpus.jsonl, queries.jsonl).
        fidelity: the store's tier (``hints``, ``text``, ``llm``; ``llm`` codes every turn: slow).
        k: hits retrieved per question.
        limit: questions asked, spread over the file (None: all).
        decoder: ``llama`` or ``extractive``.
        model: GGUF of the llama decoder.
        decoder_options: ``LlamaDecoder`` keyword options (e.g. ``ask_style``).
        progress: progress bars on stderr.
        details: when a list, one dict per question is appended.

    Returns:
        ``{"dataset", "fidelity", "decoder", "n", "n_answerable", "answerable":
        {"f1", "exact_match", "not_found", "citation_precision", "invented"},
        "unanswerable": {"n", "not_found"}, "ms_p50", "ms_p90",
        "containment@k": {"exact", "hints"}}``.
    """
    from hashmem.decoders import open_decoder

    turns, questions = load(dataset_dir)
    chosen = pick(questions, limit)
    convs = {q["conv"] for q in chosen}
    turns = [t for t in turns if t.get("conv", t["_id"].split(":")[0]) in convs]
    with tempfile.TemporaryDirectory(prefix="hashmem-eval-ask-") as tmp, \
            Memory(Path(tmp) / "ask.db", fidelity=fidelity) as mem:
        rid: dict[int, str] = {}
        for conv in sorted(convs):
            mine = [t for t in turns if t.get("conv", t["_id"].split(":")[0]) == conv]
            texts = [f"({_day(t['date_time'])}) {t['text']}" if t.get("date_time") else t["text"] for t in mine]
            ids = mem.add(texts, namespace=conv, metadata=[{"turn": t["_id"]} for t in mine], progress=progress)
            rid.update(zip(ids, (t["_id"] for t in mine), strict=True))
        options = dict(decoder_options or {}) if decoder == "llama" else {}
        dec = open_decoder(mem, decoder, model=model if decoder == "llama" else None, **options)
        rows = []
        bar = progress_bar(len(chosen), progress, desc=f"ask ({decoder}, {fidelity})", unit="q")
        for q in chosen:
            hits = mem.search(q["text"], k, namespace=q["conv"])
            started = time.perf_counter()
            ans = dec.ask(q["text"], hits)
            ms = (time.perf_counter() - started) * 1000
            gold = "" if q["answer"] is None else str(q["answer"])
            evidence = {f"{q['conv']}:{e}" for e in q.get("evidence_raw") or []}
            text = _CITE.sub("", ans.text).strip()
            shown = " ".join(memory_content(mem, h) for h in hits)
            exact_text = " ".join(mem.get(h.id).text or "" for h in hits) if fidelity != "hints" else None
            hint_text = " ".join(" ".join(h.hints) for h in hits)
            row = {
                "id": q["_id"], "category": q.get("category"), "question": q["text"], "gold": gold,
                "answer": ans.text, "found": ans.found, "ms": ms,
                "f1": token_f1(text, gold) if ans.found else 0.0,
                "em": float(normalize_answer(text) == normalize_answer(gold)) if ans.found else 0.0,
                "cited": [rid.get(c) for c in ans.citations],
                "cited_ok": sum(rid.get(c) in evidence for c in ans.citations),
                "invented": bool(ans.found and invented_terms(text, shown + " " + q["text"])),
                "contains_exact": contains(exact_text, gold) if exact_text is not None else None,
                "contains_hints": contains(hint_text, gold),
            }
            rows.append(row)
            if details is not None:
                details.append(row)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    summary = _summary(dataset_dir, fidelity, dec.name, k, rows)
    summary["ask_style"] = getattr(dec, "ask_style", None)
    return summary


def _summary(dataset_dir, fidelity: str, decoder: str, k: int, rows: list[dict]) -> dict:
    ans = [r for r in rows if r["category"] in ANSWERABLE]
    una = [r for r in rows if r["category"] not in ANSWERABLE]
    mean = lambda xs: round(float(np.mean(xs)), 4) if xs else None  # noqa: E731
    cites = sum(len(r["cited"]) for r in ans)
    exact = [r["contains_exact"] for r in ans if r["contains_exact"] is not None]
    return {
        "dataset": str(dataset_dir),
        "fidelity": fidelity,
        "decoder": decoder,
        "k": k,
        "n": len(rows),
        "n_answerable": len(ans),
        "answerable": {
            "f1": mean([r["f1"] for r in ans]),
            "exact_match": mean([r["em"] for r in ans]),
            "not_found": mean([not r["found"] for r in ans]),
            "citation_precision": round(sum(r["cited_ok"] for r in ans) / cites, 4) if cites else None,
            "invented": mean([r["invented"] for r in ans]),
        },
        "unanswerable": {"n": len(una), "not_found": mean([not r["found"] for r in una])},
        "ms_p50": round(float(np.percentile([r["ms"] for r in rows], 50)), 1) if rows else None,
        "ms_p90": round(float(np.percentile([r["ms"] for r in rows], 90)), 1) if rows else None,
        f"containment@{k}": {"exact": mean(exact) if exact else None,
                             "hints": mean([r["contains_hints"] for r in ans])},
        "not_found_text": NOT_FOUND,
    }
