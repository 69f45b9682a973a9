"""``Memory.stats``: counts, bytes per passage by part, records by fidelity, the hasher, and what the file holds.

What it does not do: count anything itself (the backend's ``byte_sums`` and, for a
store with a file, ``FileStatistics``).
"""

from __future__ import annotations

from .backends.base import FileStatistics
from .results import StoreStats

TIERS = {"hints": ("hints",), "text": ("text", "hints"), "llm": ("llm", "text", "hints")}  # what a store's records can keep


def fidelities(mem, records: int) -> dict[str, int]:
    """Records by what they keep (``StoreStats.fidelities``): bodies counted by the backend, the rest ``hints``."""
    tiers = TIERS[mem.config.fidelity]
    bodies = mem.backend.body_counts() if len(tiers) > 1 else {}
    out = {t: int(bodies.get(t, 0)) for t in tiers[:-1]}
    out["hints"] = records - sum(out.values())
    return out


def stats(mem) -> StoreStats:
    """The store's ``StoreStats`` (read under the caller's read lock)."""
    backend = mem.backend
    sums = backend.byte_sums()
    n = sums.pop("records")
    has_file = isinstance(backend, FileStatistics)
    file_bytes = backend.file_bytes() if has_file else 0
    per = {k: (v / n if n else 0.0) for k, v in sums.items()}
    per["file"] = file_bytes / n if n else 0.0
    hasher = mem.hasher
    return StoreStats(
        records=n,
        namespaces=backend.namespaces(),
        config={k: v for k, v in vars(mem.config).items() if k != "fingerprint"},
        bytes_per_passage=per,
        file_bytes=file_bytes,
        hasher={"method": hasher.method, "generation": hasher.generation, "fitted_on": hasher.fitted_on},
        ivf=backend.partitions() if has_file else {},
        file_parts=backend.file_parts() if has_file else {},
        fidelities=fidelities(mem, n),
    )
