"""The cyclic garbage collector paused while the write pipeline works through a batch.

A batch of 256 passages makes tens of thousands of ``hints.Token``s (a tuple subclass, which the
collector never untracks, unlike plain tuples of strings and ints) and keeps them alive to the
batch's end: each collection on the way (one per 700 allocations) walks them, and the older
generations' collections walk them again with every object the process holds (an embedding
model's, say). Paused, reference counting still frees everything the batch drops (it makes no
cycles); the collector runs again when the batch is done, and whatever cycles a thread made
meanwhile are collected then. Measured: ``benchmarks/ingest_profile.py`` (issue 19).

Pauses nest and overlap across threads: the collector is enabled again when the last one ends,
and only if it was enabled when the first began.

What it does not do: tune the collector's thresholds, or freeze objects.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_enabled = False  # whether the collector was enabled when the outermost pause began


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside the block (``gc.collect`` still works)."""
    global _depth, _enabled
    with _lock:
        if not _depth:
            _enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if not _depth and _enabled:
                gc.enable()
