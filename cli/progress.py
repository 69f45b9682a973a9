"""Progress of a long add when stderr is not a terminal (a pipe, a log, a CI job): a plain line now and then.

On a terminal the library draws a tqdm bar; without one a bar would be a stream of
carriage returns, so until now a long add said nothing until it ended — and embedding
is slow (74 passages/s on 2 quiet cores, ``benchmarks/long_line.py``: a 10 MB text file
is ~16,000 passages, some 4 minutes). ``reported`` wraps the passages handed to ``Memory.add_passages``, says the
total at once when it is large, then prints one line every ``EVERY_SECONDS``: how many
are stored, of how many, the rate, the time left.

What it does not do: draw bars (``memory.store``) or count passages (``memory.sources``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

EVERY_SECONDS = 10.0
ANNOUNCE = 1000  # passages (~25 s of embedding) from which the total is said at once
T = TypeVar("T")


def reported(items: Iterable[T], total: int, echo: Callable[[str], None], *,
             every: float | None = None) -> Iterator[T]:
    """Yield ``items``, calling ``echo`` with a progress line at most every ``every`` seconds.

    ``add_passages`` takes the next passage only when the batch before it is stored, so
    the count of passages taken is the count stored (within one batch).
    """
    every = EVERY_SECONDS if every is None else every
    if total >= ANNOUNCE:
        echo(f"hashmem: {total:,} passages to embed and store; a progress line every {every:g} s (--quiet: none)")
    start = last = time.monotonic()
    for n, item in enumerate(items):
        now = time.monotonic()
        if n and now - last >= every:
            last = now
            echo(line(n, total, now - start))
        yield item


def line(done: int, total: int, seconds: float) -> str:
    """``hashmem: 512 of 14,468 passages stored (4 %), 44 passages/s, about 5 min left``."""
    rate = done / seconds if seconds > 0 else 0.0
    left = f", about {_duration((total - done) / rate)} left" if rate > 0 and total >= done else ""
    share = f" ({100 * done / total:.0f} %)" if total else ""
    return f"hashmem: {done:,} of {total:,} passages stored{share}, {rate:,.0f} passages/s{left}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
