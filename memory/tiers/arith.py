"""Integer arithmetic coding: logits to frequencies, symbols to bits and back, and the body's small fields.

The bit-level half of the ``llm`` tier. ``frequency_table`` turns a model's
logits into integer frequencies deterministically: the ``TOP_K`` most likely
tokens (ties broken by token id) get ``1 + floor(p · (TOTAL − K − 1))``, and an
escape symbol the rest (``TOTAL = 2**TOTAL_BITS``). ``ArithmeticEncoder`` and
``ArithmeticDecoder`` code symbols given as ``[lo, hi)`` ranges of a total with
a 32-bit integer state (after Witten, Neal & Cleary 1987), so the same ranges
give the same bits on every machine. ``varint`` / ``read_varint`` (LEB128, 7 bits
per byte, low group first) and ``check16`` (``crc32(data) & 0xFFFF``, big-endian)
are the header fields of an LLM body.

Bit layout of a code: bits MSB-first in each byte (``np.packbits``), the last
byte zero-padded, trailing zero bytes dropped (the decoder reads zeros past the end).

What it does not do: run a model, build a prompt, or lay out a whole body
(``llm``): it knows only numbers.
"""

from __future__ import annotations

import zlib

import numpy as np

TOP_K = 512  # tokens given their own frequency; the rest share the escape
TOTAL_BITS = 20  # frequencies sum to 2**TOTAL_BITS

_STATE_BITS = 32
_FULL = (1 << _STATE_BITS) - 1
_HALF = 1 << (_STATE_BITS - 1)
_QUARTER = 1 << (_STATE_BITS - 2)


def frequency_table(logits: np.ndarray, *, top_k: int = TOP_K, total_bits: int = TOTAL_BITS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Integer frequencies of the top-K tokens and an escape, deterministically from logits.

    Args:
        logits: float [n_vocab].
        top_k: tokens with their own frequency.
        total_bits: the frequencies (top-K and escape) sum to ``2**total_bits``.

    Returns:
        ``(tokens, cum)``: int64 [K] token ids, most likely first (ties by id),
        and int64 [K + 2] cumulative frequencies; symbol ``i < K`` is
        ``tokens[i]``, symbol ``K`` the escape.
    """
    z = np.asarray(logits, dtype=np.float64)
    k = min(top_k, z.size)
    top = np.argpartition(-z, k - 1)[:k]
    top = top[np.lexsort((top, -z[top]))]  # by logit descending, then id ascending
    p = np.exp(z - z[top[0]])
    p_top = p[top] / p.sum()
    total = 1 << total_bits
    freq = np.floor(p_top * (total - k - 1)).astype(np.int64) + 1  # each ≥ 1, sum ≤ total − 1
    cum = np.zeros(k + 2, dtype=np.int64)
    np.cumsum(freq, out=cum[1 : k + 1])
    cum[k + 1] = total  # the escape takes the rest (≥ 1)
    return top.astype(np.int64), cum


class ArithmeticEncoder:
    """Symbols in, bits out: ``update`` per symbol, then ``finish`` for the code's bytes."""

    def __init__(self) -> None:
        self.low, self.high, self.pending = 0, _FULL, 0
        self.bits: list[int] = []

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        self.bits.extend([bit ^ 1] * self.pending)
        self.pending = 0

    def update(self, lo: int, hi: int, total: int) -> None:
        """Code the symbol whose range is ``[lo, hi)`` of ``total``."""
        rng = self.high - self.low + 1
        self.high = self.low + hi * rng // total - 1
        self.low = self.low + lo * rng // total
        while ((self.low ^ self.high) & _HALF) == 0:
            self._emit(self.low >> (_STATE_BITS - 1))
            self.low = (self.low << 1) & _FULL
            self.high = ((self.high << 1) & _FULL) | 1
        while self.low & ~self.high & _QUARTER:
            self.pending += 1
            self.low = (self.low << 1) ^ _HALF
            self.high = ((self.high ^ _HALF) << 1) | _HALF | 1

    def finish(self) -> bytes:
        """The code: bits MSB-first, trailing zero bytes dropped."""
        self._emit(1)
        out = np.packbits(np.array(self.bits, dtype=np.uint8)).tobytes()  # MSB first, zero-padded
        return out.rstrip(b"\x00")  # the decoder reads zeros past the end


class ArithmeticDecoder:
    """Bits in, symbols out: ``target`` says where the next symbol lies, ``update`` consumes it."""

    def __init__(self, data: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
        self.pos = 0
        self.low, self.high, self.code = 0, _FULL, 0
        for _ in range(_STATE_BITS):
            self.code = (self.code << 1) | self._bit()

    def _bit(self) -> int:
        b = self.bits[self.pos] if self.pos < len(self.bits) else 0
        self.pos += 1
        return b

    def target(self, total: int) -> int:
        """The value in ``[0, total)`` that the next symbol's range holds."""
        rng = self.high - self.low + 1
        return ((self.code - self.low + 1) * total - 1) // rng

    def update(self, lo: int, hi: int, total: int) -> None:
        """Consume the symbol whose range is ``[lo, hi)`` of ``total``."""
        rng = self.high - self.low + 1
        self.high = self.low + hi * rng // total - 1
        self.low = self.low + lo * rng // total
        while ((self.low ^ self.high) & _HALF) == 0:
            self.low = (self.low << 1) & _FULL
            self.high = ((self.high << 1) & _FULL) | 1
            self.code = ((self.code << 1) & _FULL) | self._bit()
        while self.low & ~self.high & _QUARTER:
            self.low = (self.low << 1) ^ _HALF
            self.high = ((self.high ^ _HALF) << 1) | _HALF | 1
            self.code = (self.code & _HALF) | ((self.code << 1) & (_FULL >> 1)) | self._bit()


def varint(n: int) -> bytes:
    """n ≥ 0 as LEB128: 7 bits per byte, low group first, the high bit set on all but the last."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(body: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``body[pos:]`` and the position after it.

    Raises:
        ValueError: the varint runs past the end or past 42 bits.
    """
    n = shift = 0
    while True:
        if pos >= len(body) or shift > 35:
            raise ValueError("a truncated token count")
        byte = body[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, pos


def check16(data: bytes) -> bytes:
    """The 16-bit check of data: ``crc32(data) & 0xFFFF``, 2 bytes big-endian."""
    return (zlib.crc32(data) & 0xFFFF).to_bytes(2, "big")
