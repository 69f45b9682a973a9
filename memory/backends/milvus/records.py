"""The records collection of a Milvus store (``C``, one row per passage): its rows read, written and decoded.

``Records`` reads rows by id (``QUERY_WINDOW`` ids per query), pages through a filtered
scan (within one namespace's partition when given), inserts a batch into its namespace's
partition (deleting what it can of an insert that was not acknowledged) and rewrites rows
whole: Milvus has no partial update, so a refit's codes or a re-trained dictionary's bodies
are written by reading each row with every field (``fields_of``) and upserting it.
``encode_rows``, ``decode_row`` and ``decode_hits`` convert between a row's fields (the
int8 vector, the hints and the body are base64 text, see ``schema``) and what ``Memory``
works with.

What it does not do: assign ids (``ids``), create the collection (``schema``), keep any
state between calls, or decide what an add, a search or a refit does (``backend``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ...errors import BackendUnavailableError
from ...search import Candidates
from ..base import Row
from .connection import READ, errors
from .scan import QUERY_WINDOW, scan
from .schema import code_bytes
from .uri import partition_of

BATCH = 2_000  # rows per insert / upsert call
FIELDS = ["id", "namespace", "created", "metadata", "code", "qvec", "hints", "gen"]


def fields_of(text_bytes: int | None) -> list[str]:
    """Every field of a row (what an upsert must write back): ``FIELDS``, and ``body`` in a store with bodies."""
    return FIELDS + (["body"] if text_bytes else [])


class Records:
    """The rows of one records collection, read and written through one client.

    Args:
        client: a ``connection.connect`` client.
        name: the records collection (the URI's collection).
        opts: ``uri.parse_uri``'s settings (the location to name in errors).
    """

    def __init__(self, client, name: str, opts: dict) -> None:
        self.client, self.name = client, name
        self._errors = functools.partial(errors, opts=opts)

    def rows(self, ids: Sequence[int], fields: list[str]) -> list[dict]:
        """The rows of those ids that exist (any order), with ``fields``."""
        ids = [int(i) for i in ids if 0 < int(i) < 2**63]
        out = []
        with self._errors("read"):
            for s in range(0, len(ids), QUERY_WINDOW):
                part = ids[s : s + QUERY_WINDOW]
                out += self.client.query(self.name, filter=f"id in {part}", output_fields=fields,
                                         consistency_level=READ)
        return out

    def pages(self, expr: str, fields: list[str], batch: int = 8192, namespace: str | None = None
              ) -> Iterator[list[dict]]:
        """The rows matching ``expr``, ``batch`` at a time (in one namespace's partition when given; ``scan``)."""
        parts = None if namespace is None else [partition_of(namespace)]
        return scan(self.client, self.name, expr, fields, batch=batch, level=READ,
                    guard=lambda: self._errors("read"), partition_names=parts)

    def insert(self, namespace: str, rows: list[dict], ids: list[int]) -> None:
        """Insert ``encode_rows``'s rows (of ``ids``) into the namespace's partition, ``BATCH`` per call.

        Raises:
            BackendUnavailableError: not acknowledged; the rows were deleted again where that was still possible.
        """
        try:
            with self._errors("add to"):
                for s in range(0, len(rows), BATCH):
                    self.client.insert(self.name, rows[s : s + BATCH], partition_name=partition_of(namespace))
        except BackendUnavailableError:
            with contextlib.suppress(Exception):  # not acknowledged: make sure it is absent, where we still can
                self.client.delete(self.name, ids=ids, timeout=5)
            raise

    def rewrite(self, ids: Sequence[int], fields: list[str], change: Callable[[dict], None]) -> None:
        """Rows read whole (``fields``: all of them), changed in place by ``change`` and upserted into
        their partitions, ``BATCH`` at a time; ids that do not exist are skipped."""
        keys = list(ids)
        for s in range(0, len(keys), BATCH):
            by_part: dict[str, list[dict]] = {}
            for r in self.rows(keys[s : s + BATCH], fields):
                change(r)
                by_part.setdefault(partition_of(r["namespace"]), []).append(r)
            with self._errors("write"):
                for part, group in by_part.items():
                    self.client.upsert(self.name, group, partition_name=part)

    def count(self, namespace: str | None = None, *, where: str | None = None) -> int:
        """Rows in the collection, or in one namespace (read in its partition only), matching ``where``."""
        expr = "id > 0" if namespace is None else f"namespace == {json.dumps(namespace)}"
        expr += f" and {where}" if where else ""
        parts = None if namespace is None else [partition_of(namespace)]
        with self._errors("read"):
            rows = self.client.query(self.name, filter=expr, output_fields=["count(*)"], partition_names=parts,
                                     consistency_level=READ)
        return int(rows[0]["count(*)"]) if rows else 0

    def search(self, namespace: str, qcode: np.ndarray, n: int, *, generation: int, allowed_ids=None,
               nprobe: int) -> Candidates:
        """One HAMMING search among a namespace's codes of ``generation`` (and ``allowed_ids``): at most
        ``QUERY_WINDOW`` hits, each with its code, int8 vector and hints, ties by id (``decode_hits``)."""
        expr = f"namespace == {json.dumps(namespace)} and gen == {int(generation)}"
        if allowed_ids is not None:
            expr += f" and id in {sorted(int(i) for i in allowed_ids)}"
        params = {"metric_type": "HAMMING", "params": {"nprobe": nprobe}}
        n = min(int(n), QUERY_WINDOW)
        with self._errors("search"):
            res = self.client.search(self.name, data=[bytes(np.asarray(qcode, np.uint8).tobytes())], anns_field="code",
                                     filter=expr, limit=n, output_fields=["code", "qvec", "hints"], search_params=params,
                                     partition_names=[partition_of(namespace)], consistency_level=READ)
        return decode_hits(res)

    def sampled_bytes(self, n: int, *, body: bool) -> tuple[float, float, float]:
        """Hint, metadata and (``body``) body bytes of all ``n`` rows, measured on up to 8,192 rows and scaled."""
        fields = ["hints", "metadata"] + (["body"] if body else [])
        sample = next(self.pages("id > 0", fields), []) if n else []
        scale = n / len(sample) if sample else 0.0
        hints = sum(len(base64.b64decode(r["hints"])) for r in sample) * scale
        meta = sum(len(json.dumps(r["metadata"], ensure_ascii=False).encode()) for r in sample) * scale
        text = sum(len(base64.b64decode(r["body"])) for r in sample) * scale if body else 0
        return hints, meta, text


def encode_rows(ids: Sequence[int], *, namespace: str, metadata: Sequence[dict], codes: np.ndarray,
                qvecs: np.ndarray, hints: Sequence[bytes], gen: int, created: float,
                texts: Sequence[bytes] | None = None) -> list[dict]:
    """The rows of new records: codes uint8 [n, bits/8], qvecs int8 [n, dim], hint and body bytes as base64."""
    rows = [
        {"id": ids[j], "code": codes[j].tobytes(), "namespace": namespace, "gen": int(gen),
         "qvec": base64.b64encode(qvecs[j].tobytes()).decode(), "hints": base64.b64encode(hints[j]).decode(),
         "metadata": metadata[j], "created": created}
        for j in range(len(ids))
    ]
    if texts is not None:
        for r, body in zip(rows, texts, strict=True):
            r["body"] = base64.b64encode(bytes(body)).decode()
    return rows


def decode_row(r: dict) -> Row:
    """A row read with ``FIELDS`` as the backend interface's ``Row``."""
    return Row(int(r["id"]), r["namespace"], float(r["created"]), dict(r["metadata"] or {}),
               code_bytes(r["code"]), base64.b64decode(r["qvec"]), base64.b64decode(r["hints"]),
               int(r["gen"]))


def decode_hits(res) -> Candidates:
    """A HAMMING search's first result list (with ``code``, ``qvec`` and ``hints``) as ``Candidates``, ties by id."""
    hits = [(h, h.get("entity", h)) for h in (res[0] if res else [])]
    ids = np.array([int(h.get("id", e.get("id"))) for h, e in hits], np.int64)
    ham = np.array([int(round(h["distance"])) for h, _ in hits], np.uint32)
    codes = np.array([np.frombuffer(code_bytes(e["code"]), np.uint8) for _, e in hits], np.uint8)
    qvecs = np.array([np.frombuffer(base64.b64decode(e["qvec"]), np.int8) for _, e in hits], np.int8)
    hints = [base64.b64decode(e["hints"]) for _, e in hits]
    order = np.lexsort((ids, ham))  # ties by id, as the local index
    return Candidates(ids[order], ham[order], codes[order], qvecs[order], [hints[j] for j in order])
