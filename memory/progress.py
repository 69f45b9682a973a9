"""The one progress bar of long work (adding, refitting, IVF lists, embedding, evaluations).

A tqdm bar on stderr: the count, the rate and, with a total, the time left. The CLI
decides whether one is shown (``cli/progress.py`` prints lines instead when stderr is
not a terminal); the library only draws it when asked.
"""

from __future__ import annotations

import sys


def progress_bar(total: int | None, show: bool, *, desc: str = "adding", unit: str = "passage"):
    """A tqdm bar, or None when ``show`` is false (callers then skip their updates)."""
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True)
