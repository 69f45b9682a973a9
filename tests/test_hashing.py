import io

import numpy as np
import pytest

from hashmem.memory import hashing
from hashmem.memory.config import validate_settings
from hashmem.memory.errors import ConfigError


def test_packbits_layout_known_answer():
    h = hashing.Hasher("sign", 16, np.zeros(16, np.float32), np.eye(16, dtype=np.float32))
    x = np.array([[1, -1, -1, -1, -1, -1, -1, 1] + [-1] * 7 + [1]], dtype=np.float32)
    # projection 0 is the most significant bit of byte 0
    assert h.encode(x).tolist() == [[0b10000001, 0b00000001]]


@pytest.mark.parametrize("dim,bits", [(20, 16), (384, 128), (384, 384), (33, 32)])
@pytest.mark.parametrize("method", ["sign", "itq", "lsh"])
def test_fit_encode_shapes(method, dim, bits):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((max(2 * bits, 64), dim)).astype(np.float32)
    h = hashing.fit(method, x, bits=bits)
    codes = h.encode(x)
    assert codes.shape == (len(x), bits // 8) and codes.dtype == np.uint8
    again = hashing.Hasher.from_bytes(h.to_bytes())
    assert np.array_equal(again.encode(x), codes)
    assert again.generation == h.generation == 0


def test_rows_not_mixed_when_dim_not_multiple_of_8():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 20)).astype(np.float32)
    h = hashing.initial_hasher("sign", dim=20, bits=16)
    codes = h.encode(x)
    for i in range(5):
        assert np.array_equal(codes[i], h.encode(x[i : i + 1])[0])


def test_itq_rotation_is_orthogonal_and_beats_random_rotation():
    rng = np.random.default_rng(2)
    # anisotropic data: a few strong directions
    x = (rng.standard_normal((2000, 64)) * np.linspace(3, 0.1, 64)).astype(np.float32)
    h = hashing.fit("itq", x, bits=32)
    p = h.projection.astype(np.float64)
    assert np.allclose(p.T @ p, np.eye(32), atol=2e-3)  # orthonormal up to float16 rounding (2^-11)
    # ITQ lowers the quantization loss ||B - V R||^2 compared with no rotation (plain PCA-sign)
    v = (x - h.mean) @ p
    loss_itq = np.square(np.sign(v) - v).sum()
    w = p @ np.linalg.pinv(p) @ p  # same subspace
    assert loss_itq < np.square(np.sign((x - h.mean) @ w) - (x - h.mean) @ w).sum() + 1e-6


def test_refit_increments_generation_and_keeps_lsh_planes():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 32)).astype(np.float32)
    h0 = hashing.initial_hasher("lsh", dim=32, bits=64, seed=0)
    h1 = hashing.fit("lsh", x, bits=64, previous=h0)
    assert h1.generation == 1
    assert np.array_equal(h1.projection, h0.projection)
    assert not np.array_equal(h1.mean, h0.mean)


def test_itq_needs_enough_samples():
    with pytest.raises(ValueError, match="at least bits=64"):
        hashing.fit("itq", np.zeros((10, 128), np.float32), bits=64)


def test_hamming_matches_python_reference():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, size=(50, 7), dtype=np.uint8)
    q = codes[3]
    ref = [sum(bin(a ^ b).count("1") for a, b in zip(q, row, strict=True)) for row in codes]
    assert hashing.hamming(q, codes).tolist() == ref


def test_unpack_signs_roundtrip():
    bits = np.array([[1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]], dtype=np.uint8)
    signs = hashing.unpack_signs(np.packbits(bits, axis=-1), 16)
    assert signs.tolist() == (bits * 2.0 - 1).tolist()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"bits": 100}, "multiple of 8"),
        ({"bits": 16}, "at least 32"),
        ({"bits": 512, "dim": 384, "method": "itq"}, "above the limit of 384"),
        ({"method": "pq"}, "not supported"),
        ({"hint_bytes": -1}, "between 0 and 4096"),
    ],
)
def test_settings_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        validate_settings(**kwargs)


def test_capped_itq_fit_loses_little_against_the_float64_50_iteration_fit():
    """The refit runs fewer float32 iterations; its quantization loss stays within 1 % of the old fit's."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2000, 64)) @ rng.standard_normal((64, 64))).astype(np.float32)  # correlated
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # unit rows, like embeddings

    def loss(h):
        p = h.project(x)
        return float(np.mean((np.where(p >= 0, 1.0, -1.0) - p) ** 2))

    capped = hashing.fit("itq", x, bits=32)
    assert hashing.ITQ_ITERATIONS < 50 and capped.projection.dtype == np.float32
    xc = x - x.mean(axis=0)
    old = hashing.Hasher("itq", 32, x.mean(axis=0), hashing._itq_projection(xc.astype(np.float64), bits=32,
                                                                          iterations=50, seed=0).astype(np.float32))
    random_rot = hashing.fit("itq", x, bits=32, iterations=0)
    assert loss(capped) <= 1.01 * loss(old)
    assert loss(capped) < loss(random_rot)  # and the iterations still do their job
@pytest.mark.parametrize("method", ["itq", "lsh", "sign"])
def test_fitted_projection_is_stored_as_float16_without_changing_a_code(method):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((600, 48)) * np.linspace(2, 0.2, 48)).astype(np.float32)
    h = hashing.fit(method, x, bits=32)
    raw = h.to_bytes()
    with np.load(io.BytesIO(raw)) as z:
        assert z["projection"].dtype == np.float16
    back = hashing.Hasher.from_bytes(raw)
    assert np.array_equal(back.projection, h.projection)
    assert np.array_equal(back.encode(x), h.encode(x))
    assert len(raw) < 48 * 32 * 4  # half the float32 bytes, plus the archive's headers


def test_an_unrounded_projection_is_stored_as_float32():
    p = np.full((16, 8), 0.1, np.float32)  # 0.1 is not a float16 value
    h = hashing.Hasher("lsh", 8, np.zeros(16, np.float32), p)
    assert np.array_equal(hashing.Hasher.from_bytes(h.to_bytes()).projection, p)


def test_compressed_archive_keeps_every_projection_value_in_fewer_bytes():
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((600, 64)) * np.linspace(2, 0.2, 64)).astype(np.float32)
    h = hashing.fit("itq", x, bits=64)
    plain, packed = h.to_bytes(), h.to_bytes(compress=True)
    with np.load(io.BytesIO(packed)) as z:
        assert "projection" not in z.files and z["projection_planes"].shape == (2, 64, 64)
    back = hashing.Hasher.from_bytes(packed)
    assert np.array_equal(back.projection, h.projection) and np.array_equal(back.mean, h.mean)
    assert np.array_equal(back.encode(x), h.encode(x))
    assert (back.generation, back.fitted_on, back.method) == (h.generation, h.fitted_on, h.method)
    assert len(packed) < 0.95 * len(plain)
    p = np.full((16, 8), 0.1, np.float32)  # not float16 values: kept as float32, compressed or not
    odd = hashing.Hasher("lsh", 8, np.zeros(16, np.float32), p)
    assert np.array_equal(hashing.Hasher.from_bytes(odd.to_bytes(compress=True)).projection, p)
    t = np.eye(16, dtype=np.float32)[:, ::2]  # a projection that is not C-contiguous
    view = hashing.Hasher("sign", 8, np.zeros(16, np.float32), t)
    assert np.array_equal(hashing.Hasher.from_bytes(view.to_bytes(compress=True)).projection, t)
