"""Scalar quantization of embeddings to int8 with stored per-dimension calibration.

Each dimension j maps the calibrated range [lo_j, lo_j + 255 * step_j] onto the
int8 codes -128 … 127: ``q = clip(round((x - lo) / step) - 128)``, and back
``x' = lo + (q + 128) * step``. The calibration (lo, step) is fitted once, when the
store is created, and stored; values outside it are clipped.

Scores are asymmetric: the float32 query against dequantized passages, so only
the stored side pays the quantization error.

What it does not do: choose candidates (``index.py``) or persist (``storage.py``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .errors import reading_stored


@dataclass(frozen=True)
class Quantizer:
    """Per-dimension int8 calibration.

    Attributes:
        lo: float32 [dim], value mapped to code -128.
        step: float32 [dim], width of one code step (> 0).
    """

    lo: np.ndarray
    step: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.lo.shape[0])

    def encode(self, x: np.ndarray) -> np.ndarray:
        """int8 [n, dim] codes of float embeddings x [n, dim]."""
        x = np.asarray(x, dtype=np.float32)
        q = np.rint((x - self.lo) / self.step) - 128.0
        return np.clip(q, -128, 127).astype(np.int8)

    def decode(self, q: np.ndarray) -> np.ndarray:
        """float32 [n, dim] approximations of the embeddings behind int8 codes q [n, dim]."""
        return self.lo + (np.asarray(q, dtype=np.float32) + 128.0) * self.step

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, lo=self.lo.astype(np.float32), step=self.step.astype(np.float32))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Quantizer:
        """The quantizer ``to_bytes`` wrote (StoreCorruptError when the bytes are damaged)."""
        with reading_stored("the store's int8 calibration"), np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(lo=z["lo"].astype(np.float32), step=z["step"].astype(np.float32))


def fit(x: np.ndarray, *, margin: float = 0.1) -> Quantizer:
    """Calibrate per-dimension ranges on sample embeddings.

    Args:
        x: float32 [n, dim] calibration embeddings (n >= 2).
        margin: fraction of each dimension's observed range added on both sides,
            so later passages are rarely clipped.

    Returns:
        The fitted Quantizer.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"calibration needs a [n >= 2, dim] array, got shape {x.shape}")
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = (hi - lo) * margin + 1e-6
    lo, hi = lo - pad, hi + pad
    return Quantizer(lo=lo.astype(np.float32), step=((hi - lo) / 255.0).astype(np.float32))


def cosine(queries: np.ndarray, qvecs: np.ndarray, quantizer: Quantizer) -> np.ndarray:
    """Asymmetric cosine between float queries and int8 passages.

    Args:
        queries: float32 [m, dim], unit-normalized.
        qvecs: int8 [n, dim].
        quantizer: the store's calibration.

    Returns:
        float32 [m, n] cosine similarities.
    """
    deq = quantizer.decode(qvecs)  # [n, dim]
    norms = np.linalg.norm(deq, axis=1)  # [n]
    norms[norms == 0] = 1.0
    return (np.asarray(queries, dtype=np.float32) @ deq.T) / norms[None, :]  # [m, n]
