"""zstd work spread over threads: the text tier's level-19 compression and dictionary training.

zstd releases the GIL while it compresses or trains, and a level-19 frame of a passage costs
about a millisecond, so a store's bodies are made on every core: the passages are cut into
one contiguous run per thread, each run compressed by its own compressor (a compressor is not
thread-safe) and the runs joined in order. Each frame depends only on its passage, the
dictionary and the parameters, so the bodies are the same bytes as one thread makes.

The write pipeline also compresses a batch's bodies on a thread of their own (``background``)
while its own thread tokenizes the batch (pure Python, holding the GIL).

``WORKERS`` threads at most (the cores this process may run on, up to 4); fewer than
``MIN_PER_THREAD`` passages per thread run in the caller's thread.

What it does not do: choose what to compress or how (``tiers.text``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MIN_PER_THREAD = 16  # below this many passages per thread, a thread costs more than it saves


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


WORKERS = max(1, min(4, _cores()))


def compress_all(make: Callable[[], object], raws: Sequence[bytes], *, threads: int | None = None) -> list[bytes]:
    """``make().compress(raw)`` of each raw, in order, over up to ``threads`` threads (default ``WORKERS``).

    Args:
        make: a new compressor (one per thread: a compressor is used by one thread at a time).
    """
    n = min(WORKERS if threads is None else threads, len(raws) // MIN_PER_THREAD)
    if n <= 1:
        comp = make()
        return [comp.compress(r) for r in raws]
    step = -(-len(raws) // n)
    runs = [raws[s : s + step] for s in range(0, len(raws), step)]

    def run(part: Sequence[bytes]) -> list[bytes]:
        comp = make()
        return [comp.compress(r) for r in part]

    with ThreadPoolExecutor(len(runs)) as pool:
        return [body for part in pool.map(run, runs) for body in part]


def background(fn: Callable[..., R], *args) -> Future[R]:
    """``fn(*args)`` started on a thread of its own; its ``Future`` (``result()`` waits, raising what fn raised)."""
    if WORKERS <= 1:  # one core: run it now
        done: Future[R] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - raised by result(), as a thread's would be
            done.set_exception(e)
        return done
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one call


def map_threads(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, the calls spread over up to ``WORKERS`` threads (exceptions raised as they would be)."""
    if WORKERS <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(WORKERS, len(items))) as pool:
        return list(pool.map(fn, items))
