"""The state every search and write of one open store reads: config, hasher, quantizer, lexicon.

One object per ``Memory``. It changes in two ways only: this handle's own writes (a
first calibration, a refit: ``set_quantizer``, ``set_hasher``) and ``follow``, which
applies the backend's change feed (``Backend.changes``) — what other processes
committed. Backends read it (the local index follows ``hasher``), never write it.

What it does not do: lock (``Memory`` holds the readers–writer lock around ``follow``
and its writes) or read records.
"""

from __future__ import annotations

from . import hashing, quantize
from .config import StoreConfig
from .hints import Lexicon

WATCHED = ("hasher", "quantizer", "lexicon")  # the settings a handle keeps in RAM


class SharedState:
    """Config, hasher (and its stored bytes), quantizer and lexicon of one open store.

    Attributes:
        config: the store's ``StoreConfig`` (fixed at creation).
        hasher / hasher_raw: the current ``hashing.Hasher`` and the bytes it was stored as.
        quantizer: the int8 calibration, or None before the first add.
        versions: the change-feed tags this state reflects (``Backend.changes``).
    """

    def __init__(self, config: StoreConfig, hasher_raw: bytes, quantizer_raw: bytes | None = None) -> None:
        self.config = config
        self.hasher_raw = bytes(hasher_raw)
        self.hasher = hashing.Hasher.from_bytes(self.hasher_raw)
        self.quantizer = quantize.Quantizer.from_bytes(quantizer_raw) if quantizer_raw is not None else None
        self.lexicon: Lexicon | None = None  # loaded by the first add (searching does not need it)
        self.versions: dict[str, str] = {}

    def set_hasher(self, hasher: hashing.Hasher, raw: bytes) -> None:
        """This handle's refit committed ``raw`` (the stored form of ``hasher``)."""
        self.hasher, self.hasher_raw = hasher, bytes(raw)

    def set_quantizer(self, quantizer: quantize.Quantizer) -> None:
        self.quantizer = quantizer

    def drop_lexicon(self) -> None:
        """Forget the in-RAM lexicon (its counts are another writer's now, or an add failed): reloaded when needed."""
        self.lexicon = None

    def follow(self, backend) -> bool:
        """Apply what the backend's change feed reports since ``versions``; whether anything moved.

        A new hasher (another process refitted) replaces this one; the quantizer, written
        once, is read when it appears; the lexicon is dropped when its counts moved.
        """
        moved = backend.changes(self.versions)
        if not moved:
            return False
        if "hasher" in moved:
            raw = backend.setting("hasher")
            if raw is not None and bytes(raw) != self.hasher_raw:
                self.set_hasher(hashing.Hasher.from_bytes(raw), bytes(raw))
        if "quantizer" in moved and self.quantizer is None:
            q = backend.setting("quantizer")
            if q is not None:
                self.quantizer = quantize.Quantizer.from_bytes(q)
        if "lexicon" in moved:
            self.lexicon = None
        self.versions.update(moved)
        return True
