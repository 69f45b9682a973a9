"""Binary codes from embeddings: fit a hasher, encode to packed bits, Hamming distances.

A hasher is ``bits = sign((x - mean) @ P)`` with a mean ``mean`` [dim] and a
projection ``P`` [dim, bits]:

- ``sign``: P selects coordinates: all of them when bits == dim, else the
  ``bits`` highest-variance ones (chosen at fit; the first ``bits`` before it).
- ``lsh``:  P holds seeded Gaussian random hyperplanes (Charikar 2002); only the
  mean is fitted.
- ``itq``:  P = W_pca @ R, PCA to ``bits`` dimensions followed by the Iterative
  Quantization rotation R (Gong & Lazebnik 2011). Needs at least ``bits`` samples.

Bit layout: bit j of a code is 1 when projection j is > 0; codes are packed with
``np.packbits(bits, axis=-1)`` (big-endian within a byte: projection 0 is the
most significant bit of byte 0), dtype uint8, shape [n, bits // 8].

What it does not do: decide when to refit (``store.py``) or persist (``storage.py``).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import ConfigError, reading_stored

ITQ_ITERATIONS = 20  # the quantization loss barely moves after ~20 steps (benchmarks/refit_cost.py)


@dataclass(frozen=True)
class Hasher:
    """Fitted hashing parameters.

    Attributes:
        method: ``sign``, ``lsh`` or ``itq``.
        bits: code length in bits.
        mean: float32 [dim], subtracted before projecting.
        projection: float32 [dim, bits] (``P``; for ITQ, PCA times the rotation R).
            Fitted projections are rounded to float16 values (``_half``), so the store
            keeps them as float16 without changing a single code.
        generation: fit counter; codes of different generations are never compared.
        fitted_on: number of samples the parameters were fitted on (0 = unfitted).
    """

    method: str
    bits: int
    mean: np.ndarray
    projection: np.ndarray
    generation: int = 0
    fitted_on: int = 0

    @property
    def n_bytes(self) -> int:
        return self.bits // 8

    def project(self, x: np.ndarray) -> np.ndarray:
        """Real-valued projections [n, bits] float32 of embeddings x [n, dim]."""
        x = np.asarray(x, dtype=np.float32)
        return (x - self.mean) @ self.projection

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Packed codes uint8 [n, bits // 8] of embeddings x [n, dim] float32."""
        return np.packbits(self.project(x) > 0, axis=-1)

    def to_bytes(self, *, compress: bool = False) -> bytes:
        """The parameters as an ``np.savez`` archive.

        Args:
            compress: a compressed archive (store format 3) in which a float16 projection is
                kept as its two byte planes (low bytes, high bytes): the high bytes (sign,
                exponent) compress well, so ~15 % fewer bytes, the same values.
        """
        buf = io.BytesIO()
        projection = _compact(self.projection)
        arrays = {"projection": projection}
        if compress and projection.dtype == np.float16:
            planes = np.ascontiguousarray(projection, dtype="<f2").view(np.uint8).reshape(*projection.shape, 2)
            arrays = {"projection_planes": np.ascontiguousarray(np.moveaxis(planes, -1, 0))}
        (np.savez_compressed if compress else np.savez)(
            buf,
            method=np.array(self.method),
            bits=np.array(self.bits),
            mean=self.mean.astype(np.float32),
            generation=np.array(self.generation),
            fitted_on=np.array(self.fitted_on),
            **arrays,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Hasher:
        """The hasher ``to_bytes`` wrote (StoreCorruptError when the bytes are damaged)."""
        with reading_stored("the store's hashing parameters"), np.load(io.BytesIO(data), allow_pickle=False) as z:
            if "projection_planes" in z.files:
                planes = z["projection_planes"]
                projection = np.ascontiguousarray(np.moveaxis(planes, 0, -1)).view("<f2")[..., 0]
            else:
                projection = z["projection"]
            return cls(
                method=str(z["method"]),
                bits=int(z["bits"]),
                mean=z["mean"].astype(np.float32),
                projection=projection.astype(np.float32),
                generation=int(z["generation"]),
                fitted_on=int(z["fitted_on"]),
            )


def initial_hasher(method: str, *, dim: int, bits: int, seed: int = 0) -> Hasher:
    """A hasher usable before any data is seen (zero mean).

    ``itq`` starts from seeded random orthogonal directions (it cannot run PCA on
    nothing); ``fit`` replaces them once the store holds enough passages.
    """
    rng = np.random.default_rng(seed)
    mean = np.zeros(dim, dtype=np.float32)
    if method == "sign":
        if bits > dim:
            raise ConfigError(f"sign codes have at most one bit per dimension: bits <= {dim}, got {bits}")
        projection = np.eye(dim, dtype=np.float32)[:, :bits]
    elif method == "lsh":
        projection = _half(rng.standard_normal((dim, bits)))
    elif method == "itq":
        q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        projection = _half(q[:, :bits])
    else:
        raise ValueError(f"hashing method {method!r} is not supported")
    return Hasher(method=method, bits=bits, mean=mean, projection=projection)


def fit(
    method: Literal["sign", "itq", "lsh"],
    x: np.ndarray,
    *,
    bits: int,
    previous: Hasher | None = None,
    iterations: int | None = None,
    seed: int = 0,
) -> Hasher:
    """Fit hashing parameters on sample embeddings.

    Args:
        method: ``sign``, ``itq`` or ``lsh``.
        x: float32 [n, dim] sample embeddings (here: dequantized int8 vectors).
        bits: code length; for ``itq`` needs n >= bits.
        previous: the hasher being replaced; its generation is incremented and,
            for ``lsh``, its hyperplanes are kept.
        iterations: ITQ alternating-minimisation steps (default ``ITQ_ITERATIONS``).
        seed: seed of the random rotation / hyperplanes.

    Returns:
        A new Hasher with ``generation = previous.generation + 1``.

    Raises:
        ValueError: unsupported method, or too few samples for ITQ.
    """
    x = np.asarray(x, dtype=np.float32)
    n, dim = x.shape
    generation = 0 if previous is None else previous.generation + 1
    mean = x.mean(axis=0).astype(np.float32)
    if method == "sign":
        keep = np.sort(np.argsort(x.var(axis=0))[::-1][:bits])
        projection = np.eye(dim, dtype=np.float32)[:, keep]
    elif method == "lsh":
        base = previous if previous is not None else initial_hasher("lsh", dim=dim, bits=bits, seed=seed)
        projection = base.projection
    elif method == "itq":
        if n < bits:
            raise ValueError(f"ITQ needs at least bits={bits} samples, got {n}")
        iterations = ITQ_ITERATIONS if iterations is None else iterations
        with _one_blas_thread():  # on shared, busy cores BLAS threads stall each other
            projection = _half(_itq_projection(x - mean, bits=bits, iterations=iterations, seed=seed))
    else:
        raise ValueError(f"hashing method {method!r} is not supported")
    return Hasher(
        method=method,
        bits=bits,
        mean=mean,
        projection=projection.astype(np.float32),
        generation=generation,
        fitted_on=n,
    )


def _one_blas_thread():
    """Limit BLAS to one thread when threadpoolctl is installed (a no-op otherwise)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
def _half(p: np.ndarray) -> np.ndarray:
    """float32 values that float16 holds exactly (a relative change below 2^-11)."""
    return np.asarray(p).astype(np.float16).astype(np.float32)


def _compact(p: np.ndarray) -> np.ndarray:
    """The projection as float16 when that is lossless (always, for fitted ones), else float32."""
    half = p.astype(np.float16)
    return half if np.array_equal(half.astype(np.float32), p) else p.astype(np.float32)


def _itq_projection(xc: np.ndarray, *, bits: int, iterations: int, seed: int) -> np.ndarray:
    """PCA to ``bits`` dims then ITQ's rotation R; returns W @ R [dim, bits].

    The covariance and its eigenvectors are float64 ([dim, dim]: cheap); the iterations,
    which cost O(n · bits²) each, run in float32.
    """
    xc = np.asarray(xc, dtype=np.float32)
    cov = (xc.T @ xc).astype(np.float64) / max(len(xc) - 1, 1)  # [dim, dim]
    eigval, eigvec = np.linalg.eigh(cov)
    w = eigvec[:, np.argsort(eigval)[::-1][:bits]].astype(np.float32)  # [dim, bits]
    v = xc @ w  # [n, bits]
    rng = np.random.default_rng(seed)
    r, _ = np.linalg.qr(rng.standard_normal((bits, bits)))
    r = r.astype(np.float32)
    for _ in range(iterations):
        b = np.where(v @ r >= 0, np.float32(1.0), np.float32(-1.0))  # [n, bits]
        u, _, vt = np.linalg.svd(b.T @ v)  # Procrustes: R = argmin ||B - V R||; [bits, bits]
        r = (u @ vt).T
    return w @ r


def unpack_signs(codes: np.ndarray, bits: int) -> np.ndarray:
    """±1 float32 [n, bits] from packed codes uint8 [n, bits // 8]."""
    return np.unpackbits(codes, axis=-1, count=bits).astype(np.float32) * 2.0 - 1.0


def hamming(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Hamming distances [n] (uint32) between one packed code [nb] and codes [n, nb]."""
    return np.bitwise_count(np.bitwise_xor(codes, query[None, :])).sum(axis=1, dtype=np.uint32)
