"""The store's settings: one validated object, written into the store at creation.

What it does not do: load models or touch the file; `storage.py` persists it and
`store.py` acts on it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

from .errors import ConfigError

HashMethod = Literal["sign", "itq", "lsh"]
HASH_METHODS: tuple[str, ...] = ("sign", "itq", "lsh")
FIDELITY_TIERS: tuple[str, ...] = ("hints", "text", "llm")

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_BITS = 256
DEFAULT_METHOD: HashMethod = "itq"
DEFAULT_HINT_BYTES = 48
DEFAULT_CANDIDATES = 100
MAX_K = 10_000  # hits (and rerank candidates) per search
FORMAT_VERSION = 3  # 3: creation time per batch, front-coded lexicon, tables and index on need (1, 2 still open)


@dataclass(frozen=True)
class StoreConfig:
    """Settings fixed when a store is created.

    Attributes:
        model: sentence-transformers model name or path used to embed.
        dim: embedding dimension of ``model``.
        bits: length of each binary code; a multiple of 8 in [32, dim] (ITQ/sign),
            or [32, 4 * dim] for ``lsh``.
        method: how codes are made: ``sign`` (sign of embedding minus the stored
            mean), ``itq`` (PCA to ``bits`` + ITQ rotation) or ``lsh`` (seeded
            random hyperplanes through the mean).
        hint_bytes: byte budget of the lexical hints of one passage.
        fidelity: ``hints`` (codes + hints only), ``text`` (also the exact text, zstd) or
            ``llm`` (the exact text, arithmetic-coded under the decoder model: ``llmtier``).
        fingerprint: the embedder's fingerprint (name, dim, probe hash) recorded at creation.
        format_version: on-disk format version.
    """

    model: str = DEFAULT_MODEL
    dim: int = 384
    bits: int = DEFAULT_BITS
    method: str = DEFAULT_METHOD
    hint_bytes: int = DEFAULT_HINT_BYTES
    fidelity: str = "hints"
    fingerprint: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        validate_settings(
            dim=self.dim,
            bits=self.bits,
            method=self.method,
            hint_bytes=self.hint_bytes,
            fidelity=self.fidelity,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StoreConfig:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def validate_settings(
    *,
    dim: int | None = None,
    bits: int | None = None,
    method: str | None = None,
    hint_bytes: int | None = None,
    fidelity: str | None = None,
) -> None:
    """Check user-facing settings; raise ConfigError naming the fix."""
    if method is not None and method not in HASH_METHODS:
        raise ConfigError(
            f"hashing method {method!r} is not supported; choose one of {', '.join(HASH_METHODS)}"
        )
    if bits is not None:
        if isinstance(bits, bool) or not isinstance(bits, int):
            raise ConfigError(f"bits must be an integer, got {bits!r}")
        if bits % 8 != 0:
            raise ConfigError(f"bits must be a multiple of 8, got {bits} (try {max(32, bits // 8 * 8)})")
        if bits < 32:
            raise ConfigError(f"bits must be at least 32, got {bits}")
        if dim is not None:
            limit = dim * 4 if method == "lsh" else dim
            if bits > limit:
                raise ConfigError(
                    f"bits={bits} is above the limit of {limit} for method {method!r} "
                    f"with a {dim}-dimensional model; use bits <= {limit}"
                )
    if hint_bytes is not None and not (0 <= hint_bytes <= 4096):
        raise ConfigError(f"hint_bytes must be between 0 and 4096, got {hint_bytes}")
    if fidelity is not None and fidelity not in FIDELITY_TIERS:
        raise ConfigError(
            f"fidelity {fidelity!r} is not supported; choose one of {', '.join(FIDELITY_TIERS)}"
        )
