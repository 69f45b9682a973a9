"""The local backend's ``TermIndex``: the ``term_index`` table of a ``text``/``llm`` store (``sidetables.TermTable``).

What it does not do: make or score the entries (``memory.termindex``), or drop them with a demoted
body (``demotion``).
"""

from __future__ import annotations

from collections.abc import Sequence


class LocalTerms:
    """``TermIndex`` for ``LocalBackend`` (a mixin: ``self`` is the backend, ``self.storage`` its file)."""

    def has_term_index(self) -> bool:
        """Whether the store keeps an entry with every record (a ``text``/``llm`` store made with the table)."""
        return self.storage.term_table.exists

    def term_format(self) -> int:
        """The entries ``termindex.encode`` makes for this store: 2 (``termcode`` blobs), 1 (a store made before)."""
        return self.storage.term_table.format

    def store_terms(self, txn, ids: Sequence[int], entries: Sequence) -> None:
        """Set new or rewritten records' entries inside the caller's transaction."""
        self.storage.term_table.insert(txn, ids, entries)

    def term_entries(self, ids: Sequence[int]) -> dict:
        """id → entry (bytes, or a format 1 tuple ``termindex.TermStats`` takes) of the records that have one."""
        return self.storage.term_table.fetch([int(i) for i in ids])
