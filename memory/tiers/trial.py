"""A dictionary retraining's candidates, trained and judged on a sample read from the store beforehand.

``TextTier`` reads the sample (``_sample``: on the calling thread, it reads the store) and
adopts a dictionary (``maybe_retrain``); ``train`` in between touches no store, so an add's last
retraining runs it on a thread while the add's last batches are written (``TextTier.start_trial``,
``tiers.provisional``): zstd releases the GIL as it trains and compresses.

What it does not do: read or write the store, or decide whether a dictionary pays.
"""

from __future__ import annotations

from typing import NamedTuple

from . import parallel

_COVER = {"k": 64, "d": 6}  # fixed COVER parameters: ~0.2 s to train instead of ~10 s of search


class Trial(NamedTuple):
    """A retraining's candidates: what ``TextTier.maybe_retrain`` judges."""

    old_gen: int  # the current dictionary when the sample was read
    probe: list[str]  # passages compressed to judge a dictionary
    probe_stored: int  # their bodies' bytes as stored then
    candidates: list[tuple[object, list[bytes]]]  # (dictionary, the probe's bodies under it), in size order


def train(tier, old_gen: int, samples: list[bytes], probe: list[str], probe_stored: int, sizes: list[int], *,
          level: int) -> Trial:
    """Each size's dictionary (zstd COVER on the samples) and the probe's bodies under it."""
    def candidate(size: int):  # (dictionary, the probe's bodies under it) or None; a size per thread, or threads for one
        try:
            d = tier._z.train_dictionary(size, samples, level=level, **_COVER)
        except tier._z.ZstdError:  # too little or too uniform text for this size
            return None
        return d, tier.encode(probe, generation=old_gen + 1, _dict_data=d, _threads=1 if len(sizes) > 1 else None)

    return Trial(old_gen, probe, probe_stored, list(filter(None, parallel.map_threads(candidate, sizes))) if samples else [])


def best(tier, trial: Trial, n: int) -> tuple[int | None, float, bytes]:
    """(index, total bytes, the dictionary as stored) of the candidate giving a store of n passages its smallest
    total: the probe's bodies extrapolated to n, plus the dictionary's stored bytes; (None, inf, b"") when none."""
    scale = n / max(len(trial.probe), 1)
    found, total, packed = None, float("inf"), b""
    for i, (d, bodies) in enumerate(trial.candidates):  # the first of equal totals, in size order
        stored = tier._pack_dict(d)
        t = sum(map(len, bodies)) * scale + len(stored)
        if t < total:
            found, total, packed = i, t, stored
    return found, total, packed
