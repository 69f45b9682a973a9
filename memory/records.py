"""Stored rows made into what the memory returns: ``Hit`` and ``Record``, with their hint strings and texts.

Hint blobs decode against the lexicon (or, when it is not loaded, the few terms they
use); a text-tier body decodes with the store's zstd dictionary, an llm-tier body with
the llm tier's model.

A ``get`` that returns an exact text notes the access (``access``: the order a byte budget demotes in).
``stored_terms``: the terms the lexicon counted for stored records (a rewrite counts them out).

What it does not do: search, lock, or store anything (``store.Memory``, ``backends``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import hints
from .backends.base import Row
from .errors import RecordNotFoundError
from .results import Hit, Record
from .tiers import text as texttier


def hint_strings(mem, blobs: Sequence[bytes], *, current: bool = True) -> list[list[str]]:
    """Decode hint blobs, looking up only the terms they use unless the lexicon is loaded.

    ``current=False``: this handle has not caught up (``get``), so a blob another process wrote
    since (an add, a rewrite) may use terms the loaded lexicon lacks: those are looked up."""
    lexicon = mem.state.lexicon  # once: a catch-up in another thread may drop it meanwhile
    if lexicon is not None and not current:
        n = len(lexicon.terms)
        lexicon = lexicon if all(i < n for b in blobs for i in hints.term_ids(b)) else None
    if lexicon is not None:
        return hints.decode_many(blobs, lexicon)
    terms = mem.backend.terms([i for b in blobs for i in hints.term_ids(b)])
    return hints.decode_many(blobs, terms)


def hits(mem, ids: np.ndarray, scores: np.ndarray, ham: np.ndarray) -> list[Hit]:
    """``Hit`` objects of ranked ids; a record deleted by another process just now drops out."""
    got = mem.backend.rows(ids, ("namespace", "metadata", "hints"))
    if len(got) != len(ids):  # deleted by another process just now
        pos = got.positions
        keep = np.array([int(i) in pos for i in ids], dtype=bool)
        ids, scores, ham = np.asarray(ids)[keep], np.asarray(scores)[keep], np.asarray(ham)[keep]
    namespaces, metadata, blobs = got["namespace"], got["metadata"], got["hints"]  # in the order of ids
    return [
        Hit(id=int(i), score=float(s), hamming=int(h), hints=words, metadata=m, namespace=ns)
        for i, s, h, words, m, ns in zip(ids, scores, ham, hint_strings(mem, blobs), metadata, namespaces,
                                         strict=True)
    ]


def record(mem, id: int) -> Record:
    """The ``Record`` of a checked id, its text decoded on a ``text`` or ``llm`` store.

    Raises:
        RecordNotFoundError: no such id (or it was deleted while its text was read).
    """
    got = mem.backend.rows([id])
    if id not in got:
        raise RecordNotFoundError(f"no record with id {id} in {mem.path}")
    r = got.record(id)
    text = None
    strings = hint_strings(mem, [r.hints], current=False)[0]
    if mem.config.fidelity in ("text", "llm"):
        text = read_text(mem, r.id, strings)
        if text is None and id not in mem.backend.rows([id], ("namespace",)):  # deleted between the two reads
            raise RecordNotFoundError(f"no record with id {id} in {mem.path}")
        if text is not None:
            mem._access.note(id)  # its last use, for a byte budget (``access``: in RAM, written in batches)
    return record_of(r, strings, text)


def record_of(r: Row, strings: list[str], text: str | None) -> Record:
    """The ``Record`` of a stored row, its hint strings and its text."""
    return Record(id=r.id, namespace=r.namespace, created=r.created, metadata=r.metadata, hints=strings,
                  code=np.frombuffer(r.code, dtype=np.uint8).copy(), qvec=np.frombuffer(r.qvec, dtype=np.int8).copy(),
                  text=text)


def read_text(mem, id: int, strings: Sequence[str]) -> str | None:
    """The exact text of a record (None: it has no body, or was deleted meanwhile).

    A body read just before another process's dictionary re-training committed names a
    dictionary that is gone by the time it is decoded: the body is read again (it was
    recompressed in the same transaction that dropped the dictionary).
    """
    for attempt in range(3):
        got = mem.backend.rows([id], ("text",))
        body = got["text"][0] if len(got) else None
        if body is None:
            return None
        try:
            return decode_text(mem, body, strings)
        except texttier.DictionaryGoneError:
            if attempt == 2:  # a third miss is a real loss
                raise
    return None


def decode_text(mem, body: bytes, strings: Sequence[str] = ()) -> str:
    """A stored body's text: llm-coded bodies through the llm tier, the others through the text tier."""
    if body[:1] == bytes([texttier.LLM_TAG]):
        return mem._llm().decode(body, strings)
    return mem._text_tier().decode(body)


def stored_terms(mem, ids: Sequence[int]) -> list[set[str]]:
    """The term sets the lexicon counted for stored records: of their exact text on a ``text`` store,
    else (``hints``, ``llm``: decoding an llm body takes the model) the terms their hints kept."""
    if mem.config.fidelity == "text":
        tier = mem._text_tier()
        return [hints.terms_of(hints.tokenize(tier.decode(b))) for b in mem.backend.rows(ids, ("text",))["text"]
                if b is not None]
    terms = mem.lexicon.terms
    return [{terms[i] for i in hints.term_ids(b)} for b in mem.backend.rows(ids, ("hints",))["hints"]]
