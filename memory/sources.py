"""Reading input files as text: UTF-8 validation, binary detection (NUL and other control bytes), streaming.

A file is checked in full before anything is stored (``validate``), so a bad
byte at the end of a large file leaves the store as it was. Reading then
streams the file in 1 MiB pieces (``read_pieces``), so a 50 MB file with one
line never sits in memory whole.

What it does not do: chunk (``chunk``) or store (``store``).
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError
from .validate import check_metadata, check_str

READ_BYTES = 1 << 20
# bytes that never appear in text: C0 controls but BEL, BS, TAB, LF, VT, FF, CR, SUB and ESC, and DEL
# (file(1)'s text_chars, plus SUB: DOS's end-of-file mark, which ends two of the Canterbury texts);
# random bytes without a NUL that happen to be valid UTF-8 are mostly these
_NOT_TEXT = re.compile(rb"[\x01-\x06\x0e-\x19\x1c-\x1f\x7f]")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_pieces(path: str | os.PathLike, *, check_only: bool = False) -> Iterator[str]:
    """Decode a UTF-8 file in pieces.

    Raises:
        InputError: the file is missing, binary (a NUL byte or another control character
            that text never holds), or not valid UTF-8 —
            naming the file and the byte offset.
    """
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from e
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    try:
        while True:
            raw = f.read(READ_BYTES)
            final = not raw
            nul = raw.find(b"\x00")
            if nul >= 0:
                raise InputError(f"{path}: NUL byte at byte offset {offset + nul}; binary files are not text")
            control = _NOT_TEXT.search(raw)
            if control:
                raise InputError(f"{path}: control character 0x{control.group()[0]:02x} at byte offset "
                                 f"{offset + control.start()}; binary files are not text")
            pending = len(decoder.getstate()[0])  # bytes of an unfinished character held back
            try:
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as e:
                raise InputError(f"{path}: invalid UTF-8 at byte offset {offset - pending + e.start}") from e
            offset += len(raw)
            if text and not check_only:
                yield text
            if final:
                break
    finally:
        f.close()


def validate(path: str | os.PathLike) -> int:
    """Read a text file once to check it; returns its size in bytes.

    Raises:
        InputError: missing, empty (or whitespace only), binary, or invalid UTF-8.
    """
    path = Path(path)
    has_text = False
    for piece in read_pieces(path):
        has_text = has_text or bool(piece.strip())
    if not has_text:
        raise InputError(f"{path}: the file is empty or whitespace only; nothing to store")
    return path.stat().st_size


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[str, dict]]:
    """(text, metadata) per line of a JSONL file: ``text`` required, other fields → metadata.

    Raises:
        InputError: a line is not a JSON object with a non-empty string ``text``.
    """
    path = Path(path)
    buf = ""
    line_no = 0
    for piece in read_pieces(path):
        buf += piece
        *lines, buf = buf.split("\n")
        for line in lines:
            line_no += 1
            row = _jsonl_row(path, line_no, line)
            if row is not None:
                yield row
    if buf.strip():
        row = _jsonl_row(path, line_no + 1, buf)
        if row is not None:
            yield row


def json_object(path: Path, line_no: int, line: str) -> dict | None:
    """One JSONL line as a dict (None for a blank line).

    Raises:
        InputError: the line is not JSON, or not a JSON object (with file and line number).
    """
    if not line.strip():
        return None
    try:
        obj = json.loads(line, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{line_no}: not valid JSON ({e.msg})") from e
    except ValueError as e:  # NaN, Infinity, or a number too large for a float
        raise InputError(f"{path}:{line_no}: not valid JSON ({e}); numbers must be finite") from e
    except RecursionError as e:
        raise InputError(f"{path}:{line_no}: nested too deeply") from e
    if not isinstance(obj, dict):
        raise InputError(f"{path}:{line_no}: each line must be a JSON object, got {type(obj).__name__}")
    return obj


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    x = float(text)
    if x in (float("inf"), float("-inf")):
        raise ValueError(f"{text} overflows a float")
    return x


def _jsonl_row(path: Path, line_no: int, line: str) -> tuple[str, dict] | None:
    obj = json_object(path, line_no, line)
    if obj is None:
        return None
    text = obj.pop("text", None)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{path}:{line_no}: needs a non-empty string field \"text\"")
    if "\x00" in text:
        raise InputError(f"{path}:{line_no}: the text contains a NUL character")
    check_str(text, f"{path}:{line_no}: the text")
    check_metadata(obj, f"{path}:{line_no}: the metadata")
    return text, obj


def find_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand directories recursively into their text, markdown and JSONL files (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES + JSONL_SUFFIXES
            )
        elif p.is_file():
            out.append(p)
        elif p.exists():  # a FIFO with no writer would block forever; devices and sockets are not text
            raise InputError(f"{p}: not a regular file (a pipe, device or socket); to read a stream, "
                             "pipe it into `-` (stdin)")
        else:
            raise InputError(f"{p}: no such file or directory")
    return out


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in JSONL_SUFFIXES


def check_all(files: list[Path], *, names: dict[Path, str] | None = None) -> None:
    """Validate every file fully before anything is stored (all-or-nothing ingest).

    Args:
        files: the files.
        names: how to name some files in errors (stdin's spool file is ``-``).

    Raises:
        InputError: the first bad file, with the reason.
    """
    names = names or {}
    for f in files:
        try:
            if is_jsonl(f):
                if not any(True for _ in iter_jsonl(f)):
                    raise InputError(f"{f}: no lines with text; nothing to store")
            else:
                validate(f)
        except InputError as e:
            if f in names:
                raise InputError(str(e).replace(str(f), names[f])) from e
            raise


def count_passages(files: list[Path], *, passage_tokens: int = 128) -> int:
    """How many passages ``passages`` will yield for these files (chunks them, embeds nothing)."""
    from .chunk import chunk_stream

    n = 0
    for f in files:
        if is_jsonl(f):
            n += sum(1 for _ in iter_jsonl(f))
        else:
            n += sum(1 for _ in chunk_stream(read_pieces(f), tokens=passage_tokens))
    return n


def passages(
    files: list[Path],
    *,
    metadata: dict | None = None,
    passage_tokens: int = 128,
    names: dict[Path, str] | None = None,
) -> Iterator[tuple[str, dict]]:
    """(text, metadata) of every passage of every file, streamed.

    Text files are chunked (metadata ``source``, ``start``, ``end``); each JSONL
    line is one passage (metadata: its other fields plus ``source``).
    """
    from .chunk import chunk_stream

    metadata = metadata or {}
    names = names or {}
    for f in files:
        source = names.get(f, str(f))
        if is_jsonl(f):
            for text, meta in iter_jsonl(f):
                yield text, {**metadata, **meta, "source": source}
        else:
            for p in chunk_stream(read_pieces(f), tokens=passage_tokens):
                yield p.text, {**metadata, "source": source, "start": p.start, "end": p.end}
