"""Several records with their exact texts at once: ``Memory.recall_many``, the ``llm`` bodies decoded together.

``Memory.get`` decodes one body; an ``llm`` body costs one model call per
token, so the k hits a RAG backend recalls would cost k passages one after
another. ``recall_many`` reads the k rows and bodies in one go and hands every
``llm`` body to ``LlmTier.decode_many``, which decodes them together
(``tiers.lockstep``: one model call per step for all of them, texts
bit-identical to ``get``'s). ``text``-tier bodies (a ``text`` store, or an
``llm`` store's fallbacks) decode one by one as in ``get``; a ``hints`` store
has no text.

Each record is what ``get`` returns for its id, in the order asked (a repeated
id repeats), and the errors are ``get``'s: the first id, in order, that has no
record or whose body cannot be decoded raises what ``get`` would raise for it.

What it does not do: search, reconstruct (``decoders``) or lock (like ``get``,
it reads without the store's lock).
"""

from __future__ import annotations

from collections.abc import Iterable

from . import records
from .errors import HashmemError, InputError, RecordNotFoundError
from .results import Record
from .tiers.text import LLM_TAG
from .validate import check_id


class Recalling:
    """``Memory``'s ``recall_many`` (a mixin, like ``ingest.Adding``)."""

    def recall_many(self, ids: Iterable[int]) -> list[Record]:
        """The records with these ids, in order, each as ``get`` returns it; ``llm`` bodies decoded together.

        Raises:
            InputError: ids is not an iterable of ids, or an id is not an integer in 1 … 2**63 - 1.
            RecordNotFoundError: no record with one of the ids (the first missing one is named).
            StoreCorruptError: a body cannot be decoded (the first such id's, as ``get`` raises it).
        """
        return recall_many(self, ids)


def recall_many(mem, ids: Iterable[int]) -> list[Record]:
    """``Memory.recall_many`` (see there)."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise InputError("recall_many() takes an iterable of ids; wrap a single id in a list")
    ids = [check_id(i) for i in ids]
    unique = list(dict.fromkeys(ids))
    got = mem.backend.rows(unique)
    for i in ids:
        if i not in got:
            raise RecordNotFoundError(f"no record with id {i} in {mem.path}")
    rows = [got.record(i) for i in unique]
    strings = dict(zip(unique, records.hint_strings(mem, [r.hints for r in rows], current=False), strict=True))
    texts: dict[int, str | Exception | None] = dict.fromkeys(unique)
    if mem.config.fidelity in ("text", "llm"):
        texts.update(_texts(mem, unique, strings))
    out = {}
    for r in rows:
        text = texts[r.id]
        if isinstance(text, Exception):
            raise text
        if text is None and r.id not in mem.backend.rows([r.id], ("namespace",)):  # deleted meanwhile
            raise RecordNotFoundError(f"no record with id {r.id} in {mem.path}")
        if text is not None:
            mem._access.note(r.id)  # as ``get`` does: its last use, for a byte budget
        out[r.id] = records.record_of(r, strings[r.id], text)
    return [out[i] for i in ids]


def _texts(mem, ids: list[int], strings: dict[int, list[str]]) -> dict[int, str | Exception | None]:
    """id → text (or the error decoding it raised, or None: no body) of records that exist."""
    bodies = mem.backend.rows(ids, ("text",))
    body_of = dict(zip(map(int, bodies.ids), bodies["text"], strict=True))
    coded = [i for i in ids if body_of.get(i) is not None and bytes(body_of[i][:1]) == bytes([LLM_TAG])]
    out: dict[int, str | Exception | None] = {}
    if coded:
        decoded = mem._llm().decode_many([body_of[i] for i in coded], [strings[i] for i in coded])
        out.update(zip(coded, decoded, strict=True))
    for i in ids:
        if i not in out:
            try:
                out[i] = records.read_text(mem, i, strings[i])  # a text-tier body, or none
            except HashmemError as e:  # raised in id order by the caller, as ``get`` would
                out[i] = e
    return out
