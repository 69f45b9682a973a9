"""Reading input files: UTF-8 validation with offsets, binary files, streaming."""

import json
import subprocess
import sys

import pytest
from conftest import DATA

from hashmem.memory import InputError, sources


def test_invalid_utf8_names_file_and_offset(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"hello world " * 10 + b"\xff\xfe rest")
    with pytest.raises(InputError, match=r"bad.txt: invalid UTF-8 at byte offset 120"):
        sources.validate(p)


def test_invalid_utf8_across_read_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "READ_BYTES", 16)
    p = tmp_path / "bad.txt"
    # a valid 3-byte character split across the 16-byte boundary, then a bad continuation later
    data = b"a" * 15 + "€".encode() + b"b" * 10 + b"\xe2\x82" + b"z"
    p.write_bytes(data)
    with pytest.raises(InputError, match=f"byte offset {15 + 3 + 10}"):
        sources.validate(p)


def test_truncated_character_at_end(tmp_path):
    p = tmp_path / "cut.txt"
    p.write_bytes(b"abc" + "€".encode()[:2])
    with pytest.raises(InputError, match="invalid UTF-8 at byte offset 3"):
        sources.validate(p)


def test_binary_file(tmp_path):
    p = tmp_path / "img.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError, match="NUL byte at byte offset 8; binary"):
        sources.validate(p)


@pytest.mark.parametrize("byte", [b"\x01", b"\x06", b"\x0e", b"\x19", b"\x1f", b"\x7f"])
def test_control_bytes_text_never_holds_are_binary(tmp_path, byte):
    p = tmp_path / "x.txt"
    p.write_bytes("caf\u00e9 au lait ".encode() + byte + b" more")
    with pytest.raises(InputError, match=f"control character 0x{byte[0]:02x} at byte offset 14; binary"):
        sources.validate(p)


def test_controls_that_text_holds_are_text(tmp_path):
    p = tmp_path / "x.txt"
    p.write_bytes(b"bell \x07 back\x08space tab\t form\x0cfeed\x0b cr\r\n \x1b[1mbold\x1b[0m dos eof\x1a")
    assert sources.validate(p) == p.stat().st_size


@pytest.mark.parametrize("name", ["alice29.txt", "plrabn12.txt", "asyoulik.txt", "lcet10.txt"])
def test_real_texts_are_text(name):
    """The Canterbury corpus: two of its texts end with a DOS end-of-file mark (0x1a, SUB)."""
    path = DATA / "canterbury" / name
    assert sources.validate(path) == path.stat().st_size


@pytest.mark.parametrize("content", [b"", b"   \n\n\t  "])
def test_empty_files(tmp_path, content):
    p = tmp_path / "e.txt"
    p.write_bytes(content)
    with pytest.raises(InputError, match="empty or whitespace only"):
        sources.validate(p)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        sources.find_files([tmp_path / "missing.txt"])


def test_find_files_recurses(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.txt", "a/b/y.md", "a/b/z.jsonl", "a/b/skip.bin"):
        (tmp_path / name).write_text("t")
    got = [p.relative_to(tmp_path).as_posix() for p in sources.find_files([tmp_path / "a"])]
    assert got == ["a/b/y.md", "a/b/z.jsonl", "a/x.txt"]


def test_jsonl(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"_id": "7", "text": "héllo", "tag": "x"}) + "\n\n" + json.dumps({"text": "two"}))
    rows = list(sources.iter_jsonl(p))
    assert rows == [("héllo", {"_id": "7", "tag": "x"}), ("two", {})]
    p.write_text('{"title": "no text"}\n')
    with pytest.raises(InputError, match=r"d.jsonl:1: needs a non-empty string field"):
        sources.check_all([p])
    p.write_text("{not json\n")
    with pytest.raises(InputError, match=r"d.jsonl:1: not valid JSON"):
        sources.check_all([p])


def test_huge_single_line_is_streamed(tmp_path):
    """A 50 MB file with one line is chunked without holding it in memory (peak RSS checked)."""
    p = tmp_path / "huge.txt"
    line = ("lorem ipsum dolor sit amet consectetur " * 1000).encode()
    with open(p, "wb") as f:
        while f.tell() < 50_000_000:
            f.write(line)
    script = (
        "import sys\n"
        "from hashmem.memory import sources\n"
        "from hashmem.memory.chunk import chunk_stream\n"
        "sources.validate(sys.argv[1])\n"
        "n = sum(1 for _ in chunk_stream(sources.read_pieces(sys.argv[1]), tokens=128))\n"
        # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's peak across exec)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(n, int(hwm) * 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(p)], capture_output=True, text=True, check=True)
    n, peak = map(int, out.stdout.split())
    assert n > 50_000_000 // 2048
    assert peak < 80_000_000, f"peak RSS {peak} bytes while streaming a 50 MB line"
