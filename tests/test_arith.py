"""The llm tier's arithmetic: frequency tables from logits, the integer coder, varints (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from hashmem.memory.tiers import arith


def test_frequency_table_is_integer_complete_and_breaks_ties_by_id():
    z = np.array([1.0, 3.0, 3.0, -1.0, 0.5], np.float32)
    top, cum = arith.frequency_table(z, top_k=3, total_bits=12)
    assert top.tolist() == [1, 2, 0]  # equal logits: the smaller id first
    freq = np.diff(cum)
    assert cum[0] == 0 and cum[-1] == 1 << 12 and (freq >= 1).all()
    assert freq[0] == freq[1] > freq[2]  # equal probabilities, equal frequencies
    again = arith.frequency_table(z.copy(), top_k=3, total_bits=12)
    assert np.array_equal(again[0], top) and np.array_equal(again[1], cum)


@pytest.mark.parametrize("n_symbols", [0, 1, 500])
def test_the_coder_round_trips_symbols_of_skewed_and_uniform_tables(n_symbols):
    rng = np.random.default_rng(n_symbols)
    cum = np.concatenate([[0], np.cumsum(rng.integers(1, 5000, 40))])  # one skewed table of 40 symbols
    total = int(cum[-1])
    symbols = rng.integers(0, 40, n_symbols).tolist()
    uniform = rng.integers(0, 49_152, n_symbols).tolist()  # coded uniformly, like an escaped token id
    enc = arith.ArithmeticEncoder()
    for s, u in zip(symbols, uniform, strict=True):
        enc.update(int(cum[s]), int(cum[s + 1]), total)
        enc.update(u, u + 1, 49_152)
    dec = arith.ArithmeticDecoder(enc.finish())
    got = []
    for _ in range(n_symbols):
        s = int(np.searchsorted(cum, dec.target(total), side="right")) - 1
        dec.update(int(cum[s]), int(cum[s + 1]), total)
        u = dec.target(49_152)
        dec.update(u, u + 1, 49_152)
        got.append((s, u))
    assert got == list(zip(symbols, uniform, strict=True))


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**35])
def test_varint_round_trips_and_says_where_it_ends(n):
    body = b"\xff" + arith.varint(n) + b"rest"
    assert arith.read_varint(body, 1) == (n, len(body) - 4)


def test_a_truncated_varint_is_an_error():
    with pytest.raises(ValueError, match="truncated"):
        arith.read_varint(arith.varint(300)[:1], 0)


def test_check16_is_the_low_16_bits_of_crc32_big_endian():
    assert arith.check16(b"123456789") == (0xCBF43926 & 0xFFFF).to_bytes(2, "big")
