"""When and how the hasher is refitted from the stored int8 vectors, and every code re-encoded.

A store fits its hasher first at ``FIRST_FIT`` passages, then each time it has grown
``REFIT_GROWTH``×, up to ``LAST_REFIT``; ``Memory.refit`` does it on demand. The fit and the
re-encoding run outside the write lock; one short transaction writes the new codes and
parameters unless another process refitted first (then its fit is kept).

What it does not do: fit the hashing itself (``hashing.fit``) or rebuild the in-RAM index
(the backend's ``follow``).
"""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from . import hashing
from .progress import progress_bar
from .tiers import parallel

FIRST_FIT = 1024
REFIT_GROWTH = 4  # the hasher is refitted once the store has grown this many times (up to LAST_REFIT)
LAST_REFIT = 262_144
FIT_SAMPLE = 16_384  # vectors an ITQ refit is fitted on (benchmarks/refit_cost.py)


def refit_due(mem, n: int) -> bool:
    fitted = mem.hasher.fitted_on
    if fitted >= LAST_REFIT:
        return False
    return n >= (FIRST_FIT if fitted == 0 else fitted * REFIT_GROWTH)


def maybe_refit(mem, *, progress: bool = False) -> None:
    n = mem.backend.count()
    if refit_due(mem, n):
        refit(mem, progress=progress)


def refit(mem, *, progress: bool = False) -> None:
    """Refit the hasher on the stored int8 vectors and re-encode every code.

    The fit and the re-encoding of the rows present run outside the write lock (other
    writers and readers go on); one short transaction then writes the codes, encodes
    the rows added meanwhile, and stores the new parameters — unless another process
    refitted first, in which case its fit is kept and this one dropped.

    Args:
        progress: a progress bar (total, rate, ETA) on stderr while codes are re-encoded.
    """
    job = _sampled(mem)
    if job is not None:
        base, n, sample = job
        _write(mem, base, _fitted(mem, base, n, sample), progress=progress)


def _sampled(mem) -> tuple[hashing.Hasher, int, np.ndarray] | None:
    """(the hasher being replaced, the passages now, the fit's sample), or None when there is nothing to fit."""
    mem._refresh()
    n = mem.backend.count()
    if n < 2 or mem.quantizer is None:
        return None
    sample = mem.quantizer.decode(mem.backend.sample(FIT_SAMPLE))
    if mem.config.method == "itq" and len(sample) < mem.config.bits:
        return None
    return mem.hasher, n, sample


def _fitted(mem, base: hashing.Hasher, n: int, sample: np.ndarray) -> hashing.Hasher:
    new = hashing.fit(mem.config.method, sample, bits=mem.config.bits, previous=base)
    return hashing.Hasher(new.method, new.bits, new.mean, new.projection, new.generation, fitted_on=n)


def _write(mem, base: hashing.Hasher, new: hashing.Hasher, *, progress: bool) -> None:
    """Re-encode every row with ``new`` (outside the lock), then store it unless another process refitted first."""
    upto = mem.backend.last_id()
    bar = progress_bar(mem.backend.count(), progress, desc="refitting codes")
    encoded = []
    try:
        for ids, q in mem.backend.scan("qvec", upto=upto):
            encoded.append((ids, new.encode(mem.quantizer.decode(q))))
            if bar is not None:
                bar.update(len(ids))
    finally:
        if bar is not None:
            bar.close()
    raw = new.to_bytes(compress=compressed_hasher(mem.backend))
    with mem._lock.write():  # this handle's searches see the new hasher only with the new index
        with mem.backend.transaction() as c:
            mem._refresh()
            if mem.hasher.generation != base.generation:  # another process refitted meanwhile
                return
            for ids, codes in encoded:  # rows deleted meanwhile: their UPDATE changes nothing
                mem.backend.update(c, ids, codes=codes, gen=new.generation)
            for ids, q in mem.backend.scan("qvec", after=upto):  # added meanwhile
                mem.backend.update(c, ids, codes=new.encode(mem.quantizer.decode(q)), gen=new.generation)
            mem.backend.put_setting(c, "hasher", raw)
            mem.state.set_hasher(new, raw)
        mem.backend.follow(mem.state)  # after the commit: the file's write lock is not held while the index is rebuilt


class Refits:
    """The refits of one add, each fitted on a thread while the add's next batches go on (``ingest.add_passages``).

    A refit due after a batch reads its sample at once (so it is the one ``refit`` would read
    there), and its fit (numpy and LAPACK, which release the GIL) runs on a thread of its own
    while the next batches are tokenized and inserted with the hasher they found; after a later
    batch whose fit is done, or before the next refit falls due, or after the add's last batch,
    ``_write`` re-encodes every row, those batches' included, as ``refit`` does. So a store ends
    with the same hasher and codes as when each refit ran in place: only the commits in between
    carry the previous generation's codes for a while, as when another process refits.
    ``background=False`` (an add finding repeats by their codes: ``dedup``) runs each in place. An add that
    fails drops its refit unwritten: it is due again on a later add.
    """

    def __init__(self, mem, *, background: bool = True) -> None:
        self.mem, self.background = mem, background
        self.pending: tuple[hashing.Hasher, int, Future] | None = None

    def step(self, *, progress: bool, last: bool) -> None:
        """After a committed batch: write a refit whose fit is done (or due to be), start one that is due."""
        mem = self.mem
        if self.pending is not None:
            base, n, fit = self.pending
            if last or fit.done() or mem.backend.count() >= n * REFIT_GROWTH:
                self.pending = None
                _write(mem, base, fit.result(), progress=progress)
        if last or not self.background:
            maybe_refit(mem, progress=progress)
        elif self.pending is None and refit_due(mem, mem.backend.count()) and (job := _sampled(mem)) is not None:
            base, n, sample = job
            self.pending = (base, n, parallel.background(_fitted, mem, base, n, sample))


def compressed_hasher(backend) -> bool:
    """Whether the store keeps its hasher compressed: a format 3 SQLite store does (``Storage.batch_times``);
    format 1 and 2 stores keep the archive their versions read, and a store without a SQLite file its own."""
    return bool(getattr(getattr(backend, "storage", None), "batch_times", False))
