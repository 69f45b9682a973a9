import random

import pytest

from hashmem.memory.chunk import chunk_stream, chunk_text, count_tokens

DOC = ("Hello world. This is a test!  Another sentence here?\n\nNew para with Ünïcödé. " * 40).strip()


@pytest.mark.parametrize("tokens", [5, 20, 64, 1000])
def test_offsets_point_at_the_text(tokens):
    ps = chunk_text(DOC, tokens=tokens)
    assert ps
    for p in ps:
        assert DOC[p.start : p.end] == p.text
        assert p.text == p.text.strip()
    assert [p.start for p in ps] == sorted(p.start for p in ps)


@pytest.mark.parametrize("piece", [1, 7, 100, 5000])
def test_stream_equals_whole(piece):
    whole = chunk_text(DOC, tokens=20)
    streamed = list(chunk_stream((DOC[i : i + piece] for i in range(0, len(DOC), piece)), tokens=20))
    assert streamed == whole


def test_sentence_boundaries_respected_when_possible():
    ps = chunk_text(DOC, tokens=30)
    assert all(p.text[-1] in ".!?" for p in ps[:-1])
    assert all(count_tokens(p.text) <= 30 for p in ps)


def test_long_sentence_and_long_word_are_split():
    words = " ".join(["word"] * 1000)
    ps = chunk_text(words, tokens=50)
    assert max(count_tokens(p.text) for p in ps) <= 50
    blob = "x" * 10_000
    ps = chunk_text(blob, tokens=10)
    assert "".join(p.text for p in ps) == blob
    assert max(len(p.text) for p in ps) <= 160


def test_whitespace_only_gives_nothing():
    assert chunk_text("   \n\n\t ") == []
    assert chunk_text("") == []


def test_bad_tokens():
    with pytest.raises(ValueError, match="positive"):
        chunk_text("x", tokens=0)


def test_chunking_one_long_line_is_linear():
    """An 8 MB single line (no newline, no sentence end), in 1 MiB pieces as sources reads it: the time
    grows like the size (a quadratic cut would take 64× the 1 MB time, not ~8×)."""
    import time

    text = " ".join(random.Random(5).choices(["tide", "harbour", "sailors", "rope", "Lisbon", "a"], k=1_400_000))
    pieces = [text[i : i + (1 << 20)] for i in range(0, len(text), 1 << 20)]
    seconds, counts = [], []
    for part in (pieces[:1], pieces):
        t = time.perf_counter()
        counts.append(sum(1 for _ in chunk_stream(part, tokens=128)))
        seconds.append(time.perf_counter() - t)
    assert counts[1] > 7 * counts[0] > 0
    assert seconds[1] < 24 * max(seconds[0], 0.01), seconds
