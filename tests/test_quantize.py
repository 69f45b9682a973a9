import numpy as np
import pytest

from hashmem.memory import quantize


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_roundtrip_error_within_half_step():
    rng = np.random.default_rng(0)
    x = _unit(rng.standard_normal((500, 48)).astype(np.float32))
    q = quantize.fit(x)
    back = q.decode(q.encode(x))
    assert np.all(np.abs(back - x) <= q.step / 2 + 1e-6)


def test_values_outside_calibration_are_clipped():
    q = quantize.fit(np.array([[0.0, 0.0], [1.0, 1.0]], np.float32), margin=0.0)
    codes = q.encode(np.array([[-5.0, 5.0]], np.float32))
    assert codes.tolist() == [[-128, 127]]


def test_asymmetric_cosine_close_to_float_cosine():
    rng = np.random.default_rng(1)
    x = _unit(rng.standard_normal((300, 64)).astype(np.float32))
    qs = _unit(rng.standard_normal((5, 64)).astype(np.float32))
    q = quantize.fit(x)
    approx = quantize.cosine(qs, q.encode(x), q)
    assert approx.shape == (5, 300)
    assert np.abs(approx - qs @ x.T).max() < 0.02


def test_serialization_roundtrip():
    rng = np.random.default_rng(2)
    q = quantize.fit(rng.standard_normal((10, 8)).astype(np.float32))
    q2 = quantize.Quantizer.from_bytes(q.to_bytes())
    assert np.array_equal(q.lo, q2.lo) and np.array_equal(q.step, q2.step)


def test_fit_needs_two_rows():
    with pytest.raises(ValueError, match="n >= 2"):
        quantize.fit(np.zeros((1, 4), np.float32))
