"""The text and llm tiers' view of a Milvus store: what ``Storage`` gives them locally (``body_store()``).

The tiers (``tiers.text``, ``tiers.llm``) keep their settings (the zstd dictionaries
``text_dict.*``, the llm coder's ``llm_codec``) and one body per record: here the settings
go to the settings collection and the bodies to the records' ``body`` field. ``check``
refuses, before anything is written, a body longer than the store's ``text_bytes`` (whole:
never truncated); a dictionary re-training rewrites every body (``update_texts``: rows read
whole and upserted).

What it does not do: compress or code anything (the tiers do), split a long body over
several rows, or delete a dictionary: Milvus has no transaction, so an add by another client
during a re-training may have written bodies under the old one (a few KB per re-training).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

from ...errors import InputError
from .connection import READ, STRONG
from .records import fields_of
from .schema import code_bytes
from .uri import MAX_TEXT_BYTES


class Bodies:
    """The text and llm tiers' view of a Milvus store (what ``Storage`` gives them locally).

    Settings (the zstd dictionaries, ``text_dict``, the llm coder's ``llm_codec``) are read at
    Session consistency: they are read on every add and ``get``, where a strong read would
    cost 300-400 ms. A dictionary is written before any body that needs it, so when another
    client's new dictionary is not visible yet it is read again at Strong consistency.

    Args:
        backend: the ``MilvusBackend`` whose bodies these are (its settings, records and ``text_bytes``).
    """

    def __init__(self, backend) -> None:
        self._b = backend

    path = property(lambda self: self._b.location)
    is_new = property(lambda self: self._b.is_new)
    readonly = property(lambda self: self._b.readonly)

    def get_meta(self, key: str) -> bytes | str | None:
        raw = self._b.settings.get(key, READ)
        if raw is None and key.startswith("text_dict."):
            raw = self._b.settings.get(key, STRONG)
        return raw

    def set_meta(self, txn, key: str, value: bytes | str) -> None:
        self._b.settings.put(key, value)

    def delete_meta(self, txn, key: str) -> None:
        if key.startswith("text_dict."):
            # kept: Milvus has no transaction, so an add by another client during a re-training
            # may have written bodies under the old dictionary (a few KB per re-training)
            return
        self._b.settings.delete(key)

    def transaction(self):
        return self._b.transaction()

    def count(self) -> int:
        return self._b.count()

    def byte_sums(self) -> dict[str, int]:
        return self._b.byte_sums()

    def check(self, bodies) -> None:
        """A body longer than the store's bound is refused whole (never truncated), before any write."""
        text_bytes = self._b.text_bytes
        if not text_bytes:
            return
        for j, b in enumerate(bodies):
            if len(b) > text_bytes:
                raise InputError(
                    f"passage {j} of this batch needs a {len(b):,}-byte text body; this Milvus store keeps at most "
                    f"{text_bytes:,} bytes per passage (text_bytes of the URI that created it): split the "
                    "passage, or create the store with a larger ?text_bytes= (at most "
                    f"{MAX_TEXT_BYTES:,}); nothing was stored")

    def iter_texts(self, *, batch: int = 2_000, after: int = -1) -> Iterator[tuple[list[int], list[bytes]]]:
        """(ids, bodies) with id > after in id order, in batches. The ids are listed first, so updating
        the bodies while iterating (a dictionary re-training) neither skips nor repeats a row."""
        ids = [i for i in self._b.select(None).tolist() if i > after]
        for s in range(0, len(ids), batch):
            part = ids[s : s + batch]
            got = self._b.rows(part, ("text",))  # in the asked order; a row deleted meanwhile is absent
            yield got.ids.tolist(), list(got["text"])

    def update_texts(self, txn, ids, bodies) -> None:
        """Overwrite bodies (a re-trained dictionary): rows are read whole and upserted with the new body."""
        self.check(bodies)
        new = {int(i): base64.b64encode(bytes(b)).decode() for i, b in zip(ids, bodies, strict=True)}

        def change(r: dict) -> None:
            r["body"] = new[int(r["id"])]
            r["code"] = code_bytes(r["code"])  # read back as a list holding the bytes

        self._b.records.rewrite(list(new), fields_of(self._b.text_bytes), change)
