"""Provisional text bodies: a large add's earlier batches compressed fast, as its retraining recompresses them.

A ``text`` store's add tries a new dictionary after its last batch once the store has grown
``RETRAIN_GROWTH``× since the last try (``ingest.upkeep``), and adopting one recompresses every
body at ``text.LEVEL`` (``tiers.text``): the bodies of the add's earlier batches would be
compressed twice at that level. So while the store has a dictionary and that retraining will be due at the
add's end, those batches' bodies are made at ``LEVEL`` (zstd 15, with the current dictionary:
~5x faster than 19, ~3 % larger), and only the last batch's at ``text.LEVEL``.

After the add's last retraining, if no dictionary was adopted since the provisional bodies were
made (it did not pay), the current one is adopted again as a new generation (``Bodies.settle``):
every body recompressed at ``text.LEVEL``, so a completed add leaves no provisional body. An add that
dies half-way, or whose retraining fails, leaves its committed batches' bodies provisional (valid,
only larger) until a later retraining recompresses them.

That last retraining is sampled and trained early (``TextTier.start_trial``), when ``EARLY``
passages or a quarter of the add are left: zstd trains on a thread while the last batches are
written, and after the last one the dictionary is only judged and adopted. It is trained on the
passages stored by then (the sample is a sample anyway), and judged on the whole store's size.

What it does not do: compress (``tiers.text``) or decide when to retrain.
"""

from __future__ import annotations

from concurrent.futures import Future

LEVEL = 15  # ~5x faster than 19 with a dictionary, bodies ~3 % larger (the file, whose pages they fill first: +1.3 % on SciFact)
EARLY = 2048  # the add's last retraining starts when this many passages (or a quarter of the add) are left


class Bodies:
    """The compression level of each batch of one add into a store (``ingest.add_passages``)."""

    def __init__(self, mem, total: int | None) -> None:
        self.mem, self.total = mem, total
        self.generation: int | None = None  # the dictionary provisional bodies were made with (None: none made)
        self.early: Future | None = None  # the last retraining's trial, started on a thread (``start``)

    def start(self, offset: int) -> None:
        """Before the batch from ``offset``: the add's last retraining sampled and trained on a thread, when due."""
        mem, left = self.mem, (self.total or 0) - offset
        if (self.early is not None or not offset or mem.config.fidelity != "text" or left <= 0
                or left > min(EARLY, self.total // 4)):
            return
        tier, n = mem._text_tier(), mem.backend.count() + left
        if tier.current_generation() and tier.retrain_due(n):
            self.early = tier.start_trial(n)

    def level(self, offset: int, size: int) -> int:
        """The level of the add's batch of ``size`` passages from position ``offset``."""
        from . import text

        mem = self.mem
        if mem.config.fidelity != "text" or self.total is None or offset + size >= self.total:
            return text.LEVEL
        tier = mem._text_tier()
        gen = tier.current_generation()
        if (not gen or gen + 1 >= text.MAX_GENERATION or self.generation not in (None, gen)
                or not tier.retrain_due(mem.backend.count() + self.total - offset)):
            return text.LEVEL
        self.generation = gen
        return LEVEL

    def settle(self) -> None:
        """After the add's last retraining: the current dictionary adopted again if it still is the provisional bodies'."""
        self.early = None
        if self.generation is None:
            return
        tier = self.mem._text_tier()
        if tier.current_generation() == self.generation:  # else a dictionary adopted since recompressed them
            tier._adopt(tier._dict(self.generation), self.generation, self.mem.backend.count())
        self.generation = None
