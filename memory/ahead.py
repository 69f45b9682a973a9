"""An add's batches, each embedded while the one before it is stored: the embedder one batch ahead, on a thread.

``Memory.add`` without embeddings spends ~95 % of its time in the embedder (onnxruntime or
torch, both letting go of the GIL while they compute) and the rest in this process's Python:
tokenizing for the hints and the term index, compressing bodies, SQLite. ``batches`` draws and
checks batch k + 1 and starts its embedding on a thread (``tiers.parallel.background``) before
it hands batch k to the caller, so storing one batch and embedding the next overlap.

Nothing is written ahead, and nothing is reported early: an error of drawing or checking
batch k + 1 (a bad passage, a source that fails while it reads) or of embedding it is raised
when the caller asks for batch k + 1, after batch k is stored, as without the look-ahead; a
killed process keeps exactly the batches committed before it died. A fresh store's first
batch is stored before the second is embedded: storing it calibrates the quantizer, which
embeds too. If the caller stops early (an error while storing batch k), an embedding already
running is left to finish on its thread and its result is dropped.

What it does not do: store anything (``ingest``), or embed with anything but ``Memory._embed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from .tiers import parallel
from .validate import check_metadata, check_text


@dataclass
class Batch:
    """Passages ``offset …`` of an add, checked, and their embeddings.

    ``embedded``: the embeddings come from the store's embedder (unit vectors already); False:
    they are the caller's (normalized when stored).
    """

    offset: int
    texts: list[str]
    metas: list[dict]
    given: np.ndarray | None  # the caller's embeddings
    future: Future | None  # or the store's embedder's, being made
    embedded: bool

    def vectors(self) -> np.ndarray:
        """The batch's embeddings (waiting for the embedder; raising what it raised)."""
        return self.given if self.future is None else self.future.result()


def chunks(items: Iterable, n: int) -> Iterator[list]:
    """items in lists of n (the last one shorter)."""
    batch = []
    for x in items:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _checked(rows: list, offset: int) -> tuple[list[str], list[dict]]:
    texts = [t for t, _ in rows]
    for i, t in enumerate(texts):
        check_text(t, f"passage {offset + i}")
    metas = [m for _, m in rows]
    for i, m in enumerate(metas):
        check_metadata(m, f"metadata of passage {offset + i}")
    return texts, metas


class _Drawn:
    """The next batch of a source, checked, or the error drawing or checking it raised; None texts: the source ended."""

    def __init__(self, source: Iterator[list], offset: int) -> None:
        self.offset, self.error, self.texts, self.metas = offset, None, None, []
        self.future: Future | None = None
        try:
            self.texts, self.metas = _checked(next(source), offset)
        except StopIteration:
            pass
        except Exception as e:  # noqa: BLE001 - raised when this batch's turn comes (``batches``)
            self.error, self.texts = e, []

    def start(self, mem) -> None:
        """Start embedding its texts on a thread (once)."""
        if self.future is None and self.texts and self.error is None:
            self.future = parallel.background(mem._embed, self.texts)

    def batch(self, mem) -> Batch:
        """The batch, its embedding started, or its error raised."""
        if self.error is not None:
            raise self.error
        self.start(mem)
        return Batch(self.offset, self.texts, self.metas, None, self.future, True)


def batches(mem, passages: Iterable[tuple[str, dict]], size: int,
            embeddings: np.ndarray | None = None) -> Iterator[Batch]:
    """The add's batches of ``size`` ``(text, metadata)`` pairs, checked, with their embeddings.

    With ``embeddings`` (the caller's, one row per passage) each batch gets its rows. Without,
    batch k + 1 is drawn, checked and its embedding started before batch k is yielded, once
    the store has its quantizer (``mem.quantizer``).
    """
    source = chunks(passages, size)
    offset = 0
    if embeddings is not None:
        for rows in source:
            texts, metas = _checked(rows, offset)
            yield Batch(offset, texts, metas, embeddings[offset : offset + len(rows)], None, False)
            offset += len(rows)
        return
    drawn = _Drawn(source, offset)
    while drawn.texts is not None:
        current = drawn.batch(mem)  # raises this batch's error: the batches before it are stored
        if current.future is not None:  # one embedding at a time: this batch's ends before the next one's starts
            current.future.exception()  # waits; what it raised is raised by ``vectors``, in the caller's hands
        drawn = _Drawn(source, current.offset + len(current.texts))
        if mem.quantizer is not None:  # a fresh store calibrates (and embeds) while storing its first batch
            drawn.start(mem)
        yield current
