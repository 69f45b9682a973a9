"""The bytes of a format 3 lexicon block, before zstd: front-coded terms and one-byte frequencies.

Terms (``front_encode``): the term count (uint32 little-endian), then one byte per term (how
many leading UTF-8 bytes it shares with the term before it, at most 255; 0 for the first),
then the rest of each term's UTF-8 bytes, the rests joined by ``\\n`` (terms never hold a
newline). A batch's new terms get consecutive ids in sorted order (``hints.Lexicon.observe``),
so neighbours share long prefixes.

Document frequencies (``pack_df``): their count (uint32 little-endian), one byte each (255:
look further), then (position, frequency) pairs of uint32 little-endian for those of 255 or
more. Most are 1 or 2.

What it does not do: compress (the caller runs zstd), touch SQLite, or know block sizes and
tails (``lexicon``). Format 2 blocks (``\\n``-joined terms, uint32 frequencies) are coded in
``lexicon`` where they are read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pack_df(df: Sequence[int]) -> bytes:
    """Document frequencies of a format 3 lexicon block before zstd (layout above)."""
    a = np.asarray(df, dtype=np.int64)
    big = np.flatnonzero(a >= 255)
    pairs = np.stack([big, a[big]], axis=1).astype("<u4")
    return len(a).to_bytes(4, "little") + np.minimum(a, 255).astype(np.uint8).tobytes() + pairs.tobytes()


def unpack_df(data: bytes) -> np.ndarray:
    """int64 frequencies of ``pack_df``'s bytes.

    Raises:
        ValueError: the bytes are not such a block.
    """
    if len(data) < 4:
        raise ValueError("frequencies start with their count")
    n = int.from_bytes(data[:4], "little")
    if len(data) < 4 + n or (len(data) - 4 - n) % 8:
        raise ValueError(f"{len(data)} bytes do not hold {n} frequencies")
    small = np.frombuffer(data, dtype=np.uint8, count=n, offset=4)
    pairs = np.frombuffer(data, dtype="<u4", offset=4 + n).reshape(-1, 2).astype(np.int64)
    if not np.array_equal(np.flatnonzero(small == 255), pairs[:, 0]):
        raise ValueError("the large frequencies do not match their places")
    a = small.astype(np.int64)
    a[pairs[:, 0]] = pairs[:, 1]
    return a


def front_parts(terms: Sequence[str], prev: bytes = b"") -> tuple[bytes, list[bytes]]:
    """Front coding of terms following ``prev`` (UTF-8): per term, the number of bytes it shares
    with the term before (one byte, at most 255), and the rest of its bytes."""
    shared = bytearray()
    rest = []
    for term in terms:
        cur = term.encode("utf-8")
        k, top = 0, min(len(cur), len(prev), 255)
        while k < top and cur[k] == prev[k]:
            k += 1
        shared.append(k)
        rest.append(cur[k:])
        prev = cur
    return bytes(shared), rest


def front_pack(shared: bytes, rest: Sequence[bytes]) -> bytes:
    """A format 3 lexicon block before zstd: the term count (uint32 little-endian), the shared
    byte counts, then the rests joined by ``\\n``."""
    return len(shared).to_bytes(4, "little") + shared + b"\n".join(rest)


def front_encode(terms: Sequence[str]) -> bytes:
    """A lexicon block's terms, front-coded (``front_parts``, ``front_pack``)."""
    return front_pack(*front_parts(terms))


def front_decode(data: bytes) -> list[str]:
    """The terms of ``front_encode``'s bytes.

    Raises:
        ValueError: the bytes are not a front-coded block.
    """
    if len(data) < 4:
        raise ValueError("a front-coded block starts with its term count")
    n = int.from_bytes(data[:4], "little")
    shared = data[4 : 4 + n]
    rest = data[4 + n :].split(b"\n") if n else []
    if len(shared) != n or len(rest) != n or (not n and len(data) > 4):
        raise ValueError(f"a front-coded block of {n} terms holds {len(shared)} counts and {len(rest)} rests")
    out = []
    prev = b""
    for k, tail in zip(shared, rest, strict=True):
        if k > len(prev):
            raise ValueError(f"front-coded term shares {k} bytes with a {len(prev)}-byte term")
        prev = prev[:k] + tail
        out.append(prev)
    return b"\n".join(out).decode("utf-8").split("\n") if out else []
