"""Where a text tier keeps its bodies and settings: the interface ``tiers.text`` reads and writes through.

``Backend.body_store()`` gives it: the local backend's ``Storage``, or the Milvus backend's
``Bodies``; the same object for the life of the open store.

What it does not do: compress (``tiers.text``) or store anything itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol


class BodyStore(Protocol):
    """Bodies (``texts(id, body)``) and meta settings of one open store."""

    path: object
    is_new: bool

    def get_meta(self, key: str) -> bytes | str | None: ...

    def set_meta(self, txn, key: str, value: bytes | str) -> None: ...

    def delete_meta(self, txn, key: str) -> None: ...

    def transaction(self) -> AbstractContextManager: ...

    def count(self) -> int: ...

    def byte_sums(self) -> dict[str, int]: ...

    def iter_texts(self, *, batch: int = ..., after: int = -1) -> Iterator[tuple[list[int], list[bytes]]]: ...

    def update_texts(self, txn, ids: Sequence[int], bodies: Sequence[bytes]) -> None: ...
