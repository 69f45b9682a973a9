"""Record ids for a Milvus store, assigned by the client: unique across processes without a round trip.

The records collection's primary key is assigned here rather than by Milvus (``auto_id``),
so the ids of an insert are known before it is sent and a failed add can report exactly
which ids were not acknowledged.

What it does not do: talk to the server, or guarantee uniqueness between writers whose
clocks disagree (see ``IdAllocator``).
"""

from __future__ import annotations

import secrets
import threading
import time


class IdAllocator:
    """Record ids unique across processes without a round trip: a Snowflake-like layout.

    ``id = milliseconds since 2024-01-01 << 22 | node << 10 | sequence``: 41 bits of
    time (69 years), a random 12-bit node per handle, a 10-bit per-millisecond sequence.
    Ids grow within a process and roughly with time across processes; two writers
    collide only if they draw the same node *and* write in the same millisecond
    (with 8 writers, ≈ 0.7 % that any pair share a node at all).
    """

    EPOCH_MS = 1_704_067_200_000

    def __init__(self) -> None:
        self.node = secrets.randbelow(1 << 12)
        self.last = 0
        self.lock = threading.Lock()

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        with self.lock:
            while len(out) < n:
                ms = int(time.time() * 1000) - self.EPOCH_MS
                first = (ms << 22) | (self.node << 10)
                if self.last >= first:  # this millisecond (or a clock step back): go on after the last id
                    nxt = self.last + 1
                    if nxt >> 10 != self.last >> 10:  # the millisecond's 1,024 ids are used: wait for the next
                        time.sleep(0.001)
                        continue
                else:
                    nxt = first
                end = min(nxt + (n - len(out)), ((nxt >> 10) + 1) << 10)
                out.extend(range(nxt, end))
                self.last = end - 1
        return out

    @classmethod
    def bound(cls) -> int:
        """An id above every id assigned until now (by any process whose clock agrees with ours)."""
        return ((int(time.time() * 1000) - cls.EPOCH_MS + 1) << 22) - 1
