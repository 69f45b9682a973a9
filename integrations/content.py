"""What a framework document holds of a hashmem record: its text, and whether that text is exact.

- In a ``text``-tier store the document's text is the stored passage itself,
  byte for byte, and its metadata is the user's metadata unchanged.
- In a ``hints``-tier store the passage was never stored: the text is a
  reconstruction by a decoder (``extractive`` by default: the hints laid out
  as text, fast; ``llama`` or ``auto``: the local llama.cpp model, slower and
  closer), and the metadata gains one key, ``hashmem``, with
  ``{"exact": False, "fidelity": <cosine to the stored vector>, "decoder": ...}``.

What it does not do: search (``Memory``) or build framework objects (``langchain``, ``llamaindex``).
"""

from __future__ import annotations

import threading
import warnings

FLAG_KEY = "hashmem"


class Contents:
    """Turns records of one store into (text, metadata) for documents.

    Args:
        memory: the open store.
        decoder: decoder for a hints-tier store (``extractive``, ``llama`` or ``auto``).
        hidden: metadata keys kept out of documents (an integration's own bookkeeping).
    """

    def __init__(self, memory, *, decoder: str = "extractive", hidden: tuple[str, ...] = ()) -> None:
        self.memory, self.kind, self.hidden = memory, decoder, hidden
        self._decoder = None
        self._lock = threading.Lock()

    @property
    def exact(self) -> bool:
        """True when the store keeps exact text (the ``text`` tier)."""
        return self.memory.config.fidelity == "text"

    def of(self, record) -> tuple[str, dict]:
        """(text, metadata) of a ``Record``; the text is exact or a flagged reconstruction."""
        meta = {k: v for k, v in record.metadata.items() if k not in self.hidden}
        if self.exact and record.text is not None:
            return record.text, meta
        with self._lock:
            if self._decoder is None:
                from hashmem.decoders import DecoderFallbackWarning, open_decoder

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DecoderFallbackWarning)
                    self._decoder = open_decoder(self.memory, self.kind)
            r = self._decoder.reconstruct(record)
        meta[FLAG_KEY] = {"exact": r.exact, "fidelity": round(r.fidelity, 4), "decoder": r.decoder}
        return r.text, meta
