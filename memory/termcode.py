"""The packed bytes of one term index entry (format 2, ``termindex``): exp-Golomb id gaps, unary counts, nibble numbers.

One entry is one blob::

    [header byte][varint n][varint extra, if flagged][bit stream][numbers, if any]

- header: bits 0-3 ``k``, the exp-Golomb order of this passage's gaps (the one of 0..15 that
  makes the stream shortest); bit 4: numbers as nibbles follow the stream; bit 5: numbers as a
  msgpack map follow it (a number with a character outside ``NIBBLES`` or longer than 15);
  bit 6: an ``extra`` varint follows ``n``; bit 7: 0 (reserved for a later format);
- ``n``: the passage's distinct lexicon terms; ``extra``: its term count (BM25's ``|d|``) minus
  the lexicon terms' counts (the numbers' share), only when not 0;
- the bit stream (most significant bit first, padded to a byte), in three runs so that many
  entries decode at once with numpy (``unpack``): each of the ``n`` gaps' prefix sizes in unary
  (``s`` zeros, then a 1; a gap is ``id - previous id - 1``, the first is the id itself, and
  ``y = (gap >> k) + 1`` has ``s = floor(log2 y)``), the ``n`` counts' ``count - 1`` in unary
  (counts at most 255), then each gap's ``s + k`` suffix bits (``y`` without its top bit, then
  the gap's low ``k`` bits);
- numbers (never in the lexicon), to the end of the blob: nibbles, each number (in sorted
  order) as its length (1-15) and its characters' positions in ``NIBBLES``, preceded by
  ``0, count - 1`` (count 2-16) or ``0, 0, count // 16, count % 16`` (17-255); an odd tail is
  padded with a 0 nibble.

On SciFact this is 148.6 B per passage in SQLite pages against format 1's 211.8
(``benchmarks/termbytes.py``).

What it does not do: count terms, pick them, or score (``termindex``); store (``backends``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgpack
import numpy as np

NIBBLES = "0123456789.,:/-%"  # every character a number token (``hints._TOKEN``) has in ASCII
_NIBBLE = {c: i for i, c in enumerate(NIBBLES)}
_HEX = str.maketrans(NIBBLES, "0123456789abcdef")  # a character → its nibble as a hex digit
MAX_K = 15
_NUMBERS_NIBBLES, _NUMBERS_MSGPACK, _EXTRA = 0x10, 0x20, 0x40


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        if x < 0x80:
            return v, i
        shift += 7


def _floor_log2(x: np.ndarray) -> np.ndarray:
    """floor(log2(x)) of integers x ≥ 1 (int64), exact."""
    out = np.floor(np.log2(x.astype(np.float64))).astype(np.int64)
    out -= (np.int64(1) << out) > x  # float rounding at 2**53 and up
    out += (np.int64(1) << (out + 1)) <= x
    return out


def _unary(values: np.ndarray) -> np.ndarray:
    """Bits (uint8) of ``v`` zeros then a 1, for each value."""
    out = np.zeros(int(values.sum()) + len(values), np.uint8)
    out[np.cumsum(values + 1) - 1] = 1
    return out


def _numbers(numbers: Mapping[str, int]) -> tuple[int, bytes]:
    if all(len(s) <= 15 and not s.strip(NIBBLES) for s in numbers):
        hexes = []  # the nibbles as hex digits: a count's, then the number's length and characters
        for s, c in sorted(numbers.items()):
            c = min(c, 255)
            if c > 16:
                hexes.append(f"00{c:02x}")
            elif c > 1:
                hexes.append(f"0{c - 1:x}")
            hexes.append(f"{len(s):x}{s.translate(_HEX)}")
        nib = "".join(hexes)
        return _NUMBERS_NIBBLES, bytes.fromhex(nib + "0" * (len(nib) % 2))
    return _NUMBERS_MSGPACK, msgpack.packb(dict(sorted(numbers.items())))


def pack(length: int, ids: Sequence[int], counts: Sequence[int], numbers: Mapping[str, int]) -> bytes:
    """One entry: ``ids`` ascending distinct lexicon ids, ``counts`` theirs (≥ 1), ``numbers`` number → count."""
    v = np.diff(np.asarray(ids, np.int64), prepend=-1) - 1  # [n] gaps ≥ 0
    cnt = np.minimum(np.asarray(counts, np.int64), 255)
    n = len(v)
    ks = np.arange(MAX_K + 1)
    k = int(np.argmin(2 * _floor_log2((v[None, :] >> ks[:, None]) + 1).sum(1) + n * ks)) if n else 0
    y = (v >> k) + 1
    size = _floor_log2(y)  # [n] the unary prefix; the suffix has size + k bits
    suffix = (y - (1 << size)) << k | (v & ((1 << k) - 1))
    width = size + k
    if n and int(width.max()) > 57:  # unpack reads a suffix from the 64 bits at its first byte
        raise ValueError("term index ids must be below 2**57")
    top = int(width.max()) if n else 0
    rem = ((suffix[:, None] >> (width[:, None] - 1 - np.arange(top))) & 1).astype(np.uint8)
    rem = rem[np.arange(top) < width[:, None]]
    stream = np.packbits(np.concatenate([_unary(np.concatenate([size, cnt - 1])), rem]))
    head = bytearray([k])
    tail = b""
    if numbers:
        kind, tail = _numbers(numbers)
        head[0] |= kind
    head += _varint(n)
    extra = length - int(cnt.sum())
    if extra:
        head[0] |= _EXTRA
        head += _varint(extra)
    return bytes(head) + stream.tobytes() + tail


def pack_many(lengths: Sequence[int], n: np.ndarray, ids: np.ndarray, counts: np.ndarray,
              numbers: Sequence[Mapping[str, int] | None]) -> list[bytes]:
    """``pack`` of many entries, their bit streams made all at once with numpy: the same bytes.

    Args:
        lengths: each entry's length; ``n`` int64 [m]: its lexicon terms; ``ids``, ``counts``
            int64 [sum(n)]: every entry's ids (ascending within an entry) and counts, entry after
            entry; ``numbers``: each entry's number → count (None or empty: none).
    """
    m, t = len(n), len(ids)
    cnt = np.minimum(counts, 255)
    has = n > 0
    own = np.repeat(np.arange(m), n)
    first = (np.cumsum(n) - n)[has]  # each entry's first term
    v = np.diff(ids, prepend=-1) - 1  # [t] gaps ≥ 0, the first of each entry being its id
    v[first] = ids[first]
    ks = np.arange(MAX_K + 1)
    cost = np.zeros((m, MAX_K + 1), np.int64)  # pack's choice of k, for every entry at once
    if t:
        cost[has] = np.add.reduceat(2 * _floor_log2((v[:, None] >> ks[None, :]) + 1), first, axis=0)
    k = np.argmin(cost + n[:, None] * ks[None, :], axis=1)
    kt = k[own]
    y = (v >> kt) + 1
    size = _floor_log2(y)
    suffix = (y - (1 << size)) << kt | (v & ((1 << kt) - 1))
    width = size + kt
    if t and int(width.max()) > 57:  # as pack
        raise ValueError("term index ids must be below 2**57")

    def within(x: np.ndarray) -> np.ndarray:  # cumulative sums restarting at each entry (inclusive)
        cs = np.cumsum(x)
        return cs - np.repeat((cs - x)[first], n[has])

    quot = np.bincount(own, size + 1, minlength=m).astype(np.int64)  # each entry's bits: prefixes, counts, suffixes
    units = np.bincount(own, cnt, minlength=m).astype(np.int64)
    nbytes = (quot + units + np.bincount(own, width, minlength=m).astype(np.int64) + 7) // 8
    start = 8 * (np.cumsum(nbytes) - nbytes)  # each entry's first bit
    bits = np.zeros(8 * int(nbytes.sum()), np.uint8)
    bits[start[own] + within(size + 1) - 1] = 1
    bits[start[own] + quot[own] + within(cnt) - 1] = 1
    tid = np.repeat(np.arange(t), width)
    j = np.arange(len(tid)) - np.repeat(np.cumsum(width) - width, width)  # each suffix bit's place in its suffix
    at = (start + quot + units)[own] + within(width) - width  # each suffix's first bit
    bits[(at[tid] + j)[((suffix[tid] >> (width[tid] - 1 - j)) & 1).astype(bool)]] = 1
    stream = np.packbits(bits).tobytes()
    out = []
    for e, (kind, nn, extra, s0, size_e) in enumerate(zip(k.tolist(), n.tolist(), (np.asarray(lengths) - units).tolist(),
                                                        (start // 8).tolist(), nbytes.tolist(), strict=True)):
        head = bytearray([kind])
        tail = b""
        if numbers[e]:
            flag, tail = _numbers(numbers[e])
            head[0] |= flag
        head += _varint(nn)
        if extra:
            head[0] |= _EXTRA
            head += _varint(extra)
        out.append(bytes(head) + stream[s0 : s0 + size_e] + tail)
    return out


def header(blob: bytes) -> tuple[int, int, int, int]:
    """(k, n, extra length, the bit stream's first byte) of one entry."""
    n = blob[1]
    if n < 0x80:
        i = 2
    else:
        n, i = _read_varint(blob, 1)
    if not blob[0] & _EXTRA:
        return blob[0] & MAX_K, n, 0, i
    extra, i = _read_varint(blob, i)
    return blob[0] & MAX_K, n, extra, i


def numbers(blob: bytes, start: int) -> dict[str, int]:
    """number → count of one entry whose numbers begin at byte ``start`` (``unpack`` gives it)."""
    kind = blob[0] & (_NUMBERS_NIBBLES | _NUMBERS_MSGPACK)
    if not kind:
        return {}
    part = blob[start:]
    if kind == _NUMBERS_MSGPACK:
        return msgpack.unpackb(part)
    nib = [x for b in part for x in (b >> 4, b & 15)]
    out, i, count = {}, 0, 1
    while i < len(nib):
        if nib[i] == 0:
            if i + 2 > len(nib):  # the padding nibble
                break
            if nib[i + 1]:
                count, i = nib[i + 1] + 1, i + 2
            else:
                count, i = nib[i + 2] << 4 | nib[i + 3], i + 4
            continue
        size = nib[i]
        out["".join(NIBBLES[x] for x in nib[i + 1 : i + 1 + size])] = count
        i, count = i + 1 + size, 1
    return out


def number_counts(blob: bytes, start: int, wanted: Sequence[str], hexes: Sequence[str | None]) -> list[int]:
    """How often each of ``wanted`` (number tokens) occurs in one entry whose numbers begin at ``start``.

    A nibble section is searched as hex first (``hexes``: ``patterns(wanted)``, each number's
    length nibble and its characters' nibbles): only a section holding one of them is parsed.
    """
    kind = blob[0] & (_NUMBERS_NIBBLES | _NUMBERS_MSGPACK)
    if kind == _NUMBERS_NIBBLES:
        text = blob[start:].hex()
        if not any(p is not None and p in text for p in hexes):
            return [0] * len(wanted)
    elif not kind:
        return [0] * len(wanted)
    found = numbers(blob, start)
    return [found.get(w, 0) for w in wanted]


def patterns(numbers: Sequence[str]) -> list[str | None]:
    """Each number's nibbles as hex (None: it cannot be in a nibble section)."""
    return [f"{len(s):x}" + "".join(f"{_NIBBLE[c]:x}" for c in s)
            if len(s) <= 15 and all(c in _NIBBLE for c in s) else None for s in numbers]


def _runs(first: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """``first[p] + j`` for ``j < lens[p]``, concatenated over p."""
    total = int(lens.sum())
    starts = np.cumsum(lens) - lens
    return np.repeat(first - starts, lens) + np.arange(total)


def unpack(blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (entry position, lexicon id, count) triples of many entries at once, each entry's length, and
    where its numbers begin.

    Returns:
        (owner int64 [t], ids int64 [t], counts float32 [t], lengths int64 [m], numbers' first byte int64 [m]).
    """
    m = len(blobs)
    heads = np.array([header(b) for b in blobs], np.int64).reshape(m, 4)
    k, n = heads[:, 0], heads[:, 1]
    size = np.fromiter(map(len, blobs), np.int64, count=m)
    offset = np.cumsum(size) - size  # each blob's first byte
    s = 8 * (offset + heads[:, 3])  # each stream's first bit
    raw = np.frombuffer(b"".join(blobs), np.uint8)
    bits = np.unpackbits(raw)
    ones = np.flatnonzero(bits.view(bool))
    owner = np.repeat(np.arange(m), n)
    has = n > 0
    # one unary run per entry: its n quotients, then its n counts - 1
    ends = ones[_runs(np.searchsorted(ones, s), 2 * n)]  # [2t] the runs' 1 bits
    first = np.cumsum(2 * n) - 2 * n  # each entry's first code
    gaps = np.diff(ends, prepend=0) - 1
    gaps[first[has]] = ends[first[has]] - s[has]
    term = _runs(first, n)  # [t] each term's quotient code
    q, counts = gaps[term], (gaps[term + np.repeat(n, n)] + 1).astype(np.float32)
    after = s.copy()
    after[has] = ends[(first + 2 * n - 1)[has]] + 1  # each entry's first remainder bit
    if not len(q):
        return owner, q, counts, heads[:, 2].copy(), (s + 7) // 8 - offset
    kk = k[owner]
    width = q + kk  # [t] each suffix's bits (its unary prefix: q)
    start = np.cumsum(width) - width  # exclusive, over all terms
    pos = start + np.repeat((after - start[np.minimum(first // 2, len(start) - 1)])[has], n[has])  # suffixes' first bits
    if int(width.max()) <= 25:  # the 32 bits from each suffix's byte hold it
        p = np.concatenate([raw, np.zeros(5, np.uint8)]).astype(np.uint32)
        word = p[:-4] << np.uint32(24) | p[1:-3] << np.uint32(16) | p[2:-2] << np.uint32(8) | p[3:-1]
        suffix = ((word[pos >> 3] << (pos & 7).astype(np.uint32)) >> (np.uint32(31) - width.astype(np.uint32))) \
            >> np.uint32(1)
    else:  # 64 bits
        p = np.concatenate([raw, np.zeros(9, np.uint8)]).astype(np.uint64)
        word = p[:-8] << np.uint64(56)
        for b in range(1, 8):
            word |= p[b : len(p) - 8 + b] << np.uint64(56 - 8 * b)
        suffix = ((word[pos >> 3] << (pos & 7).astype(np.uint64)) >> (np.uint64(63) - width.astype(np.uint64))) \
            >> np.uint64(1)
    v = ((np.int64(1) << width) | suffix.astype(np.int64)) - (np.int64(1) << kk)
    step = np.cumsum(v + 1)
    last = np.cumsum(n) - 1  # each entry's last term (where it has one)
    base = np.repeat(np.r_[0, step[last[has]]][:-1] if has.any() else np.zeros(0, np.int64), n[has])
    ids = step - base - 1
    lengths = np.bincount(owner, counts, minlength=m).astype(np.int64) + heads[:, 2]
    stop = after.copy()  # each stream's end: its numbers' first byte
    stop[has] += np.bincount(owner, width, minlength=m).astype(np.int64)[has]
    return owner, ids, counts, lengths, (stop + 7) // 8 - offset
