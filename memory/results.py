"""Result types the memory returns: dataclasses, never bare tuples."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id: record id.
        score: cosine between the query and the record's int8 vector (or, in
            ``binary`` mode, ``1 - 2 * hamming / bits``).
        hamming: Hamming distance between the query's code and the record's code.
        hints: the record's lexical hints, in passage order.
        metadata: the record's metadata.
        namespace: the record's namespace.
    """

    id: int
    score: float
    hamming: int
    hints: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    namespace: str = "default"


@dataclass(frozen=True)
class Record:
    """Everything the store keeps of one passage.

    Attributes:
        id: record id (never reused).
        namespace: its partition.
        created: Unix time of insertion.
        metadata: user metadata (JSON object).
        hints: lexical hints in passage order.
        code: packed binary code, uint8 [bits // 8].
        qvec: int8 vector [dim].
        text: the exact passage, only in a ``text``-tier store; else None.
    """

    id: int
    namespace: str
    created: float
    metadata: dict
    hints: list[str]
    code: np.ndarray
    qvec: np.ndarray
    text: str | None = None


@dataclass(frozen=True)
class StoreStats:
    """Counts and sizes of a store.

    Attributes:
        records: number of passages.
        namespaces: passages per namespace.
        config: the store's settings.
        bytes_per_passage: mean stored bytes per passage by part
            (``code``, ``qvec``, ``hints``, ``metadata``, ``text``, ``lexicon``,
            ``file``: the whole SQLite file divided by the passage count).
        file_bytes: size of the store file (with its WAL).
        file_parts: bytes of the file by part, adding up to ``file_bytes`` (see
            ``Storage.file_parts``: the records' code, qvec, hints, metadata and
            other bytes, namespace index, lexicon, settings, text, IVF lists,
            SQLite's own pages, free pages, WAL).
        hasher: {"method", "generation", "fitted_on"} of the current codes.
        ivf: per namespace searched through IVF lists, {"nlist", "lists_from"
            ("vectors" or "codes"), "fitted_on"}; namespaces scanned whole are absent.
    """

    records: int
    namespaces: dict[str, int]
    config: dict
    bytes_per_passage: dict[str, float]
    file_bytes: int
    hasher: dict
    ivf: dict = field(default_factory=dict)
    file_parts: dict[str, int] = field(default_factory=dict)
