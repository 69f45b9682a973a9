"""The lexicon collection of a Milvus store (``C__lexicon``): one row per term, its id, text and document frequency.

``LexiconRows`` loads the whole ``hints.Lexicon`` (``load``: term ids are dense from 0, a gap
means a damaged store), reads the terms of given ids (``terms``, what a writer checks its new
ids against) and upserts rows (``write``). The lexicon's document count is a settings value
(``lexicon_docs``), not a row here.

What it does not do: decide when to reload (``sync``), refuse a clash between two writers
taking the same id (the backend's ``save_lexicon``), or delete a term (none is ever removed).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ...errors import StoreCorruptError
from ...hints import Lexicon
from .connection import READ, errors
from .records import BATCH, QUERY_WINDOW
from .scan import scan
from .schema import DUMMY


class LexiconRows:
    """The rows of one lexicon collection, read and written through one client.

    Args:
        client: a ``connection.connect`` client.
        name: the lexicon collection (``C__lexicon``).
        opts: ``uri.parse_uri``'s settings (the location to name in errors).
    """

    def __init__(self, client, name: str, opts: dict) -> None:
        self.client, self.name = client, name
        self.location = opts["location"]
        self._errors = functools.partial(errors, opts=opts)

    def load(self, *, n_docs: int) -> Lexicon:
        """The whole lexicon (``n_docs``: its document count, a settings value).

        Raises:
            StoreCorruptError: a term id is missing (ids are dense from 0).
        """
        lex = Lexicon()
        lex.n_docs = n_docs
        rows = self.rows()
        rows.sort(key=lambda r: r["id"])
        for expected, r in enumerate(rows):
            if r["id"] != expected:
                raise StoreCorruptError(f"{self.location}: the lexicon has a gap at term id {expected}")
            lex.ids[r["term"]] = expected
            lex.terms.append(r["term"])
            lex.df.append(int(r["df"]))
        return lex

    def rows(self, batch: int = 8192) -> list[dict]:
        """Every term's row (``id``, ``term``, ``df``), in no particular order (``scan``)."""
        return [r for page in scan(self.client, self.name, "id >= 0", ["id", "term", "df"], batch=batch,
                                   level=READ, guard=lambda: self._errors("read")) for r in page]

    def terms(self, ids: Sequence[int]) -> dict[int, str]:
        """The term of each id that has one."""
        ids = sorted({int(i) for i in ids})
        out = {}
        with self._errors("read"):
            for s in range(0, len(ids), QUERY_WINDOW):
                part = ids[s : s + QUERY_WINDOW]
                for r in self.client.query(self.name, filter=f"id in {part}", output_fields=["id", "term"],
                                           consistency_level=READ):
                    out[int(r["id"])] = r["term"]
        return out

    def write(self, lex: Lexicon, ids: Sequence[int]) -> None:
        """Upsert the rows of these term ids of ``lex`` (their term and document frequency), ``BATCH`` per call."""
        rows = [{"id": i, "term": lex.terms[i], "df": int(lex.df[i]), DUMMY: [0.0, 0.0]} for i in ids]
        with self._errors("write"):
            for s in range(0, len(rows), BATCH):
                self.client.upsert(self.name, rows[s : s + BATCH])
