"""The tier bodies of a batch about to be written, and the hints an ``llm`` body is coded against (``ingest``).

What it does not do: write them (``ingest.add_batch``), or compress and code text (``tiers``).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import hints
from .tiers import text as tiertext


def texts_for_tier(mem, texts: Sequence[str], hint_strings: Sequence[Sequence[str]] | None = None,
                   level: int = tiertext.LEVEL) -> tuple[list[bytes] | None, list[bytes] | None]:
    """(bodies, text-tier bodies) of passages: ``llm`` bodies where they round-trip and pay.

    ``level``: the text tier's zstd level (``tiers.provisional``: a body the add's retraining recompresses).
    """
    if mem.config.fidelity not in ("text", "llm"):
        return None, None
    fallbacks = mem._text_tier().encode(texts, level=level)
    mem.backend.check_bodies(fallbacks)  # an llm body is used only where it is smaller
    if mem.config.fidelity == "llm" and hint_strings is not None:
        return mem._llm().encode(texts, hint_strings, fallbacks), fallbacks
    return fallbacks, fallbacks


def hint_preview(mem, toks, term_sets) -> list[list[str]]:
    """The hint strings of passages as this handle would store them now (its lexicon is not changed)."""
    import copy

    lexicon = copy.deepcopy(mem.lexicon)
    lexicon.observe(term_sets)
    return [hints.decode(hints.encode(t, lexicon, budget=mem.config.hint_bytes), lexicon) for t in toks]
