"""A byte budget: exact bodies demoted to hints-only, least recently used first, until the store fits.

On a ``text`` or ``llm`` store each record keeps, besides its code, int8 vector and hints, an
exact body (about 60 % of a SciFact text store's bytes). ``compact`` drops bodies until the
store is under ``max_bytes``: a demoted record keeps everything search reads (id, code, vector,
hints, metadata), so every search gives the same ids and scores as before, and ``get`` returns
``text=None``: a decoder rebuilds it from its hints and vector (``exact: false``), as on a
``hints`` store.

Order: least recently used first, then lowest id. A body's last use is its creation time, or
the last ``get`` that returned it (``access``; kept once the store has compacted or has a
budget). Steps, each its own transaction (a kill loses at most the demotions of the step it
interrupts; the store opens, and every record not being demoted keeps its body):

1. give back free pages (``BodyDemotion.reclaim``; the first time on a local store, a
   ``VACUUM`` switches the file to incremental vacuum);
2. demote the oldest bodies whose bytes cover the excess, ``CHUNK`` per transaction, then
   reclaim and measure again; the bytes a demoted body actually frees (page granularity)
   steer the next round; when bodies free less than half their bytes (their pages stay in use
   by bodies kept), the store is packed once by a full ``VACUUM``;
3. stop when the store fits, or when the namespace has no body left (``met`` False).

A saved budget (``set_byte_budget``, the meta setting ``byte_budget``) is applied after each
add (``after_add``, from ``ingest.upkeep``).

What it does not do: SQL or Milvus calls (the backend's ``BodyDemotion``), decide what a
record's text is (the tiers), or touch codes, vectors or hints.
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np

from .backends.base import BodyDemotion
from .errors import ConfigError, StoreError, UpkeepWarning
from .results import ByteBudget, Compacted
from .validate import check_namespace

SETTING = "byte_budget"  # JSON {"max_bytes": N, "namespace": name or null}; "null" when removed
CHUNK = 4096  # bodies demoted per transaction (the write lock is held this long)
ROW_OVERHEAD = 10  # bytes of a texts row besides its body: cell pointer, lengths, rowid


def check_max_bytes(max_bytes) -> int:
    """A budget in bytes: a positive integer."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int | np.integer) or max_bytes <= 0:
        raise ConfigError(f"max_bytes must be a positive integer (bytes), got {max_bytes!r}")
    return int(max_bytes)


def _demotable(mem) -> BodyDemotion:
    backend = mem.backend
    if not isinstance(backend, BodyDemotion):
        raise ConfigError(f"{mem.path}: this backend cannot demote bodies to meet a byte budget "
                          "(a Milvus store cannot: see docs/milvus.md); compact a local store")
    if backend.readonly:
        raise StoreError(f"cannot compact {mem.path}: opened read-only")
    return backend


def _reclaim(mem, *, full: bool = False) -> int:
    """Give free pages back (this handle's other threads wait); the store's size after."""
    with mem._lock.write():
        mem.backend.reclaim(full=full)
        return mem.backend.budget_bytes()


def compact(mem, max_bytes: int, *, namespace: str | None = None) -> Compacted:
    """Demote exact bodies, least recently used first, until the store is under ``max_bytes``.

    Args:
        mem: the open ``Memory`` (writable).
        max_bytes: the budget: a local store's database size (its file once checkpointed, which
            this does), bytes.
        namespace: demote only this namespace's bodies (the budget is still the whole store's).

    Returns:
        ``Compacted``.

    Raises:
        ConfigError: a bad ``max_bytes``, or a backend that cannot demote (Milvus).
        StoreError: read-only, or the store could not be written (what was committed stays).
    """
    started = time.perf_counter()
    max_bytes = check_max_bytes(max_bytes)
    if namespace is not None:
        check_namespace(namespace)
    backend = _demotable(mem)
    mem._access.flush()
    with mem._lock.write():
        with backend.transaction() as c:
            backend.track_access(c)  # from now on the store keeps its bodies' last reads
    before = size = backend.budget_bytes()
    if size > max_bytes:
        size = _reclaim(mem)
    ids, sizes, used = backend.body_ages(namespace)
    order = np.lexsort((ids, used))  # least recently used, then oldest
    ids, sizes = ids[order], sizes[order] + ROW_OVERHEAD
    pos, demoted, ratio, packed = 0, 0, 1.0, False
    while size > max_bytes and pos < len(ids):
        need = (size - max_bytes) / ratio
        end = min(len(ids), pos + int(np.searchsorted(np.cumsum(sizes[pos:]), need)) + 1)
        for s in range(pos, end, CHUNK):
            with mem._lock.write():
                with backend.transaction() as c:
                    demoted += backend.demote(c, ids[s : min(s + CHUNK, end)].tolist())
        after = _reclaim(mem)
        ratio = float(np.clip((size - after) / max(int(sizes[pos:end].sum()), 1), 0.05, 1.0))
        if ratio < 0.5 and not packed:  # the freed rows left pages in use: pack the store once
            after, packed = _reclaim(mem, full=True), True
            ratio = 1.0
        size, pos = after, end
    return Compacted(max_bytes=max_bytes, bytes_before=before, bytes_after=size, demoted=demoted,
                     exact=len(ids) - pos, met=size <= max_bytes, seconds=time.perf_counter() - started)


def saved_budget(mem) -> ByteBudget | None:
    """The store's saved budget, or None."""
    if not isinstance(mem.backend, BodyDemotion):
        return None
    raw = mem.backend.setting(SETTING)
    value = json.loads(raw) if raw else None
    return ByteBudget(int(value["max_bytes"]), value.get("namespace")) if value else None


def after_add(mem) -> None:
    """Apply the saved budget, if any, when the store has grown past it (``ingest.upkeep``)."""
    if not isinstance(mem.backend, BodyDemotion) or mem.backend.readonly:
        return
    budget = saved_budget(mem)
    if budget is None or mem.backend.budget_bytes() <= budget.max_bytes:
        return
    done = compact(mem, budget.max_bytes, namespace=budget.namespace)
    if not done.met:
        warnings.warn(f"{mem.path} is over its byte budget ({done.bytes_after:,} > {budget.max_bytes:,} bytes) "
                      "with every body of " + (f"namespace {budget.namespace!r}" if budget.namespace else "it")
                      + " demoted: raise the budget or delete passages", UpkeepWarning, stacklevel=4)


class Compacting:
    """``Memory``'s byte-budget methods (a mixin: ``self`` is the ``Memory``)."""

    def compact(self, max_bytes: int | None = None, *, namespace: str | None = None) -> Compacted:
        """Demote exact bodies to hints-only, least recently used first, until the store is under ``max_bytes``.

        Demoted records stay searchable with the same code and vector (search results do not
        change); ``get`` gives them ``text=None`` and a decoder rebuilds them (``exact: false``).
        See the ``compact`` module for the order and the crash safety.

        Args:
            max_bytes: the budget in bytes (a local store: the file once its WAL is checkpointed);
                default the saved one (``set_byte_budget``).
            namespace: demote only this namespace's bodies (default: the saved budget's, else any).

        Raises:
            ConfigError: no budget, a bad one, or a backend that cannot demote (Milvus).
            StoreError: opened read-only, or a write failed (what was committed stays).
        """
        if max_bytes is None:
            budget = saved_budget(self)
            if budget is None:
                raise ConfigError(f"{self.path} has no byte budget: give max_bytes, or save one with "
                                  "set_byte_budget (`hashmem compact --max-bytes N --save`)")
            max_bytes, namespace = budget.max_bytes, budget.namespace if namespace is None else namespace
        return compact(self, max_bytes, namespace=namespace)

    @property
    def byte_budget(self) -> ByteBudget | None:
        """The saved byte budget applied after each add, or None."""
        return saved_budget(self)

    def set_byte_budget(self, max_bytes: int | None, *, namespace: str | None = None) -> None:
        """Save (or, with None, remove) a byte budget that every later add applies when it has grown past it.

        Saving one also starts keeping the bodies' last reads (the order of demotion). It does
        not compact now: call ``compact()``.

        Raises:
            ConfigError: a bad budget, or a backend that cannot demote (Milvus).
        """
        value = None
        if max_bytes is not None:
            value = {"max_bytes": check_max_bytes(max_bytes), "namespace": namespace}
            if namespace is not None:
                check_namespace(namespace)
        backend = _demotable(self)
        with self._lock.write():
            with backend.transaction() as c:
                backend.put_setting(c, SETTING, json.dumps(value))
                backend.track_access(c)
