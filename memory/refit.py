"""When and how the hasher is refitted from the stored int8 vectors, and every code re-encoded.

A store fits its hasher first at ``FIRST_FIT`` passages, then each time it has grown
``REFIT_GROWTH``×, up to ``LAST_REFIT``; ``Memory.refit`` does it on demand. The fit and the
re-encoding run outside the write lock; one short transaction writes the new codes and
parameters unless another process refitted first (then its fit is kept).

What it does not do: fit the hashing itself (``hashing.fit``) or rebuild the in-RAM index
(the backend's ``follow``).
"""

from __future__ import annotations

from . import hashing
from .progress import progress_bar

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
    mem._refresh()
    n = mem.backend.count()
    if n < 2 or mem.quantizer is None:
        return
    sample = mem.quantizer.decode(mem.backend.sample(FIT_SAMPLE))
    if mem.config.method == "itq" and len(sample) < mem.config.bits:
        return
    base = mem.hasher
    new = hashing.fit(mem.config.method, sample, bits=mem.config.bits, previous=base)
    new = hashing.Hasher(new.method, new.bits, new.mean, new.projection, new.generation, fitted_on=n)
    upto = mem.backend.last_id()
    bar = progress_bar(n, progress, desc="refitting codes")
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


def compressed_hasher(backend) -> bool:
    """Whether the store keeps its hasher compressed: a format 3 SQLite store does (``Storage.batch_times``);
    format 1 and 2 stores keep the archive their versions read, and a store without a SQLite file its own."""
    return bool(getattr(getattr(backend, "storage", None), "batch_times", False))
