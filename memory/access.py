"""Last-access times of exact bodies, noted in RAM on each read and written in batches.

A byte budget (``compact``) demotes the least recently used bodies first. What counts as a
use: creation, and a ``Memory.get`` that returned the exact text (recall, ask and the servers'
reads go through it). A search never counts and never writes. A get only notes the time in
RAM; the batch is written when it holds ``FLUSH_EVERY`` ids or is ``FLUSH_AFTER`` seconds old,
before a compaction, and when the store is closed. Writing never makes a read wait: the backend
gives up at once when another writer holds the store (``note_access`` returns False) and the
batch is kept for the next try. A read-only handle notes nothing, and a store keeps the times
only once it has compacted or has a budget (``BodyDemotion.track_access``): until then the
batches are dropped, so a store that never compacts is never written by its reads. A killed
process loses the times it had not written, which only changes the order of later demotions.

What it does not do: choose what to demote (``compact``) or SQL (the backend).
"""

from __future__ import annotations

import threading
import time

from .backends.base import BodyDemotion
from .errors import HashmemError

FLUSH_EVERY = 256  # ids noted before a batch is written
FLUSH_AFTER = 30.0  # seconds a noted access waits at most (checked at the next get)


class AccessLog:
    """The pending last-access times of one open store (thread-safe).

    Args:
        backend: the store's backend; a read-only one, or one without ``BodyDemotion``, notes nothing.
    """

    def __init__(self, backend) -> None:
        self.backend = backend
        self.enabled = isinstance(backend, BodyDemotion) and not backend.readonly
        self._pending: dict[int, float] = {}
        self._first = 0.0
        self._lock = threading.Lock()

    def note(self, id: int) -> None:
        """A body was read now; write the batch when it is due."""
        if not self.enabled:
            return
        now = time.time()
        with self._lock:
            if not self._pending:
                self._first = now
            self._pending[int(id)] = now
            due = len(self._pending) >= FLUSH_EVERY or now - self._first >= FLUSH_AFTER
        if due:
            self.flush()

    def flush(self) -> bool:
        """Write the pending times; False when the store was busy (they stay pending)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending or self.backend.closed:
            return True
        try:
            if self.backend.note_access(pending):
                return True
        except HashmemError:  # they only order later demotions: never fail a read or a close
            return False
        with self._lock:  # busy: keep them, the newer time of an id noted meanwhile wins
            for i, t in pending.items():
                if self._pending.get(i, 0.0) < t:
                    self._pending[i] = t
            self._first = min(self._first or time.time(), min(pending.values()))
        return False
