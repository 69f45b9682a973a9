"""The local backend's ``BodyDemotion``: exact bodies dropped from the ``texts`` table, the space given back.

A demotion deletes ``texts`` rows (and their ``body_access`` and ``term_index`` rows) in the caller's
transaction;
``records`` is not touched, so the in-RAM index, the codes, the int8 vectors and the hints stay
exactly as they were. The freed pages go back to the filesystem through ``StoreFile.reclaim``
(incremental vacuum; the first time, one ``VACUUM`` switches the file to it). A byte budget is
held to the database's pages (``page_count × page_size``): the file's size once the WAL is
checkpointed, which ``reclaim`` does.

What it does not do: choose what to demote or when (``memory.compact``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class LocalDemotion:
    """``BodyDemotion`` for ``LocalBackend`` (a mixin: ``self`` is the backend, ``self.storage`` its file)."""

    def body_ages(self, namespace: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        storage = self.storage
        key = None
        if namespace is not None:
            key = storage.records.names.key(namespace)
            if key is None:  # a namespace never stored: nothing to demote
                return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        return storage.texts.ages(key, storage.records.created_sql, storage.file.has("body_access"))

    def demote(self, txn, ids: Sequence[int]) -> int:
        gone = self.storage.texts.delete(txn, ids)
        for table in ("body_access", "term_index"):  # its last reads, and its exact words' counts
            if self.storage.file.has(table):
                for s in range(0, len(ids), 900):
                    chunk = [int(i) for i in ids[s : s + 900]]
                    txn.execute(f"DELETE FROM {table} WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        return gone

    def reclaim(self, *, full: bool = False) -> None:
        self.storage.file.reclaim(full=full)

    def budget_bytes(self) -> int:
        return self.storage.file.page_bytes()

    def body_counts(self) -> dict[str, int]:
        return self.storage.texts.counts()

    def track_access(self, txn) -> None:
        self.storage.access.start(txn)

    def note_access(self, accessed: Mapping[int, float]) -> bool:
        return self.storage.access.write(accessed)
