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
        fidelities: records by what they keep: ``llm`` (an llm-tier body, on an ``llm``
            store), ``text`` (a zstd body, on a ``text`` or ``llm`` store), ``hints`` (codes,
            vector and hints only: every record of a ``hints`` store, and those a byte
            budget demoted).
    """

    records: int
    namespaces: dict[str, int]
    config: dict
    bytes_per_passage: dict[str, float]
    file_bytes: int
    hasher: dict
    ivf: dict = field(default_factory=dict)
    file_parts: dict[str, int] = field(default_factory=dict)
    fidelities: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Compacted:
    """What ``Memory.compact`` did.

    Attributes:
        max_bytes: the budget.
        bytes_before: the store's size before (a local store: its pages, the file once checkpointed).
        bytes_after: its size after.
        demoted: records whose exact body was dropped (they keep code, vector, hints, metadata).
        exact: records (of the namespace compacted, or all) that still keep an exact body.
        met: ``bytes_after <= max_bytes``; False when demoting every body of the namespace was not enough.
        seconds: wall time.
    """

    max_bytes: int
    bytes_before: int
    bytes_after: int
    demoted: int
    exact: int
    met: bool
    seconds: float


@dataclass(frozen=True)
class ByteBudget:
    """A store's saved byte budget, applied after each add (``Memory.set_byte_budget``).

    Attributes:
        max_bytes: the size the store is held under.
        namespace: only this namespace's bodies are demoted; None: any.
    """

    max_bytes: int
    namespace: str | None = None


@dataclass(frozen=True)
class Match:
    """A new passage found to repeat another.

    Attributes:
        position: the new passage's position in its add.
        id: the stored record it repeats (for one repeating an earlier passage of the same add,
            that passage's id once stored).
        score: int8 cosine of the two (1.0 for an exact copy found by its text hash).
        exact: the normalized texts are equal (known only within one batch; see the module docstring).
    """

    position: int
    id: int
    score: float
    exact: bool


@dataclass(frozen=True)
class Remembered:
    """What ``Memory.remember`` did with each passage.

    Attributes:
        ids: one id per passage, in order: its new id, or the id of the passage it repeats.
        matches: one ``Match`` per passage that was not stored because it repeats another.
    """

    ids: list[int]
    matches: list[Match]

    @property
    def added(self) -> list[int]:
        """The new ids (the passages that were stored)."""
        repeated = {m.position for m in self.matches}
        return [i for p, i in enumerate(self.ids) if p not in repeated]
