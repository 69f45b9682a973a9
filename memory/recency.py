"""Recency: newer memories preferred when scores tie closely (``recency_weight`` of a search).

After stage 3 has scored its C candidates (int8 cosine, or the hybrid blend), each
candidate's score gains ``recency_weight · newness``, where newness ∈ [0, 1] is the rank
of the candidate's created time among the distinct created times of the candidates,
scaled so that the oldest gets 0 and the newest 1 (candidates added in one batch share
a time, and so a newness). The top k are then taken by that score (ties by id). A small
weight only reorders candidates whose scores lie within it of each other: with 0.02, a
memory must score within 0.02 of an older one to pass it.

Newness is a rank, not a time difference: the created time the store keeps is the wall
clock when a batch was added, whose spacing says how fast things were added, not how far
apart they happened; the rank keeps only the order (a later batch is newer).

What it does not do: keep times (the backends keep one per batch), search, or decay
scores by age in seconds.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

STAGE3_MODES = ("binary+int8", "hybrid")  # the search modes with a stage 3 to reorder


def check_weight(weight, mode: str = "binary+int8") -> float:
    """The recency weight of a search in ``mode`` as a float, checked.

    Raises:
        ConfigError: not a number in [0, 1], or a non-zero weight with a mode that has no
            stage 3 (``binary``, ``int8``).
    """
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 <= weight <= 1.0:
        raise ConfigError(f"recency_weight must be a number in [0, 1], got {weight!r}")
    if weight and mode not in STAGE3_MODES:
        raise ConfigError(f"recency_weight reorders the int8 stage's candidates; mode {mode!r} has none: "
                          f"use {' or '.join(STAGE3_MODES)}")
    return float(weight)


def newness(created: np.ndarray) -> np.ndarray:
    """float32 [n] in [0, 1]: each created time's rank among the distinct ones (oldest 0, newest 1).

    All equal (or one candidate): 0 for every one.
    """
    created = np.asarray(created, dtype=np.float64)
    distinct, rank = np.unique(created, return_inverse=True)
    if len(distinct) < 2:
        return np.zeros(len(created), dtype=np.float32)
    return (rank / (len(distinct) - 1)).astype(np.float32)


def prefer_newer(ids: np.ndarray, scores: np.ndarray, created: np.ndarray, weight: float, k: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The top k positions by ``score + weight · newness`` (ties by id), and those boosted scores.

    Args:
        ids: int64 [n] candidate ids.
        scores: float32 [n] their stage-3 scores.
        created: [n] their created times (Unix seconds).
        weight: the recency weight (``check_weight``).
        k: positions to return.

    Returns:
        (positions int64 [≤ k] into the inputs, best first; float32 scores at those positions).
    """
    boosted = (np.asarray(scores, dtype=np.float32) + np.float32(weight) * newness(created)).astype(np.float32)
    order = np.lexsort((ids, -boosted))[:k]
    return order, boosted[order]
