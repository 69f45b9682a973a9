"""Hostile input through the CLI: every kind gives one line (or a usage error), no traceback, and the
store file byte-for-byte as it was.

One store is built for the module; each row of ``CASES`` is one kind of bad input, run through
``CliRunner`` with exceptions caught, so that a traceback would show as ``result.exception``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hashmem.cli.main import cli
from hashmem.memory.errors import ConfigError, HashmemError, InputError, StoreCorruptError

HUGE = "99999999999999999999"
SURROGATE = "caf\udcff"  # what Python makes of the invalid UTF-8 byte 0xff in argv


def _files(d: Path) -> dict[str, str]:
    """Bad input files by name; paths are filled into CASES by name."""
    d.mkdir()
    rng = random.Random(7)
    specs = {
        "empty.txt": b"",
        "zero.db": b"",
        "blank.txt": b" \n\t\n",
        "binary.txt": b"\x89PNG\r\n\x1a\n\x00\x00",
        # random bytes without NUL that are valid UTF-8 (all below 0x80): once stored as 2 passages
        "random7bit.txt": bytes(rng.randrange(1, 128) for _ in range(2000)),
        "random.txt": rng.randbytes(2000),
        "badutf8.txt": b"caf\xc3\xa9 then \xff bad",
        "nul.txt": b"text with a \x00 inside",
        "good.txt": b"A perfectly fine file that must not be added alongside a bad one.",
        "nan.jsonl": b'{"text": "a reading", "value": NaN}\n',
        "inf.jsonl": b'{"text": "a reading", "value": -Infinity}\n',
        "overflow.jsonl": b'{"text": "a reading", "value": 1e999}\n',
        "array.jsonl": b"[1, 2, 3]\n",
        "notext.jsonl": b'{"body": "no text field"}\n',
        "emptytext.jsonl": b'{"text": "   "}\n',
        "numtext.jsonl": b'{"text": 42}\n',
        "badjson.jsonl": b'{"text": "unterminated\n',
        "surrogate.jsonl": b'{"text": "lone \\ud800 surrogate"}\n',
        "surrogatekey.jsonl": b'{"text": "fine text", "\\udc00": 1}\n',
        "surrogatemeta.jsonl": b'{"text": "fine text", "k": "\\ud83d"}\n',
        "deep.jsonl": b'{"text": "deep", "m": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        "blanklines.jsonl": b"\n\n   \n",
        "nultext.jsonl": b'{"text": "nul \\u0000 inside"}\n',
    }
    for name, data in specs.items():
        (d / name).write_bytes(data)
    (d / "nothing").mkdir()
    (d / "nothing" / "image.png").write_bytes(b"\x89PNG")
    os.mkfifo(d / "fifo.txt")
    foreign = d / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    (d / "garbage.db").write_bytes(b"this is not a database" * 300)
    conn = sqlite3.connect(d / "notables.db")  # an SQLite database with no tables (its header only)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("DROP TABLE t")
    conn.commit()
    conn.close()
    return {p.name: str(p) for p in d.iterdir()}


# (kind, argv (names in {braces} are files from _files; {store} is the module's store), stdin, exit code, text)
CASES = [
    ("k huge", ["search", "x", "-k", "1000000000"], None, 2, "1<=x<=10000"),
    ("k float exponent", ["search", "x", "-k", "1e20"], None, 2, "not a valid integer"),
    ("k zero", ["search", "x", "-k", "0"], None, 2, "1<=x<=10000"),
    ("k negative", ["search", "x", "-k", "-3"], None, 2, "1<=x<=10000"),
    ("candidates huge", ["search", "x", "--candidates", HUGE], None, 2, "--candidates"),
    ("where without =", ["search", "x", "--where", "noequals"], None, 2, "--where"),
    ("where empty key", ["search", "x", "--where", "=1"], None, 2, "--where"),
    ("where key with quote", ["search", "x", "--where", 'a"b=1'], None, 1, "without double quotes"),
    ("where key with apostrophe", ["search", "x", "--where", "it's=1"], None, 0, "no hits"),
    ("where key SQL", ["search", "x", "--where", "a') OR 1=1 --=1"], None, 0, "no hits"),
    ("where value NaN", ["search", "x", "--where", "n=NaN"], None, 0, "no hits"),
    ("empty query", ["search", ""], None, 1, "the query is empty"),
    ("blank query", ["search", "   \t"], None, 1, "the query is empty"),
    ("query invalid UTF-8", ["search", SURROGATE], None, 1, "not valid Unicode"),
    ("unknown namespace", ["search", "x", "-n", "nobody"], None, 0, "no hits"),
    ("show id beyond 64 bits", ["show", HUGE], None, 2, "RECORD_ID"),
    ("show id zero", ["show", "0"], None, 2, "RECORD_ID"),
    ("show id not a number", ["show", "abc"], None, 2, "not a valid integer"),
    ("show missing id", ["show", "424242"], None, 1, "no record with id 424242"),
    ("delete id beyond 64 bits", ["delete", HUGE], None, 2, "IDS"),
    ("delete missing id twice", ["delete", "424242", "424242"], None, 1, "deleted 0 of 1 record(s)"),
    ("delete not a number", ["delete", "x1"], None, 2, "not a valid integer"),
    ("recall id beyond 64 bits", ["recall", HUGE], None, 2, "RECORD_ID"),
    ("recall missing id", ["recall", "424242", "--decoder", "extractive"], None, 1, "no record with id"),
    ("add missing file", ["add", "{dir}/missing.txt"], None, 1, "no such file"),
    ("add directory without text", ["add", "{nothing}"], None, 1, "no text, markdown or .jsonl files"),
    ("add FIFO", ["add", "{fifo.txt}"], None, 1, "not a regular file"),
    ("add empty file", ["add", "{empty.txt}"], None, 1, "empty or whitespace only"),
    ("add blank file", ["add", "{blank.txt}"], None, 1, "empty or whitespace only"),
    ("add binary file", ["add", "{binary.txt}"], None, 1, "binary files are not text"),
    ("add random 7-bit bytes", ["add", "{random7bit.txt}"], None, 1, "binary files are not text"),
    ("add random bytes", ["add", "{random.txt}"], None, 1, "binary files are not text"),
    ("add invalid UTF-8", ["add", "{badutf8.txt}"], None, 1, "invalid UTF-8 at byte offset"),
    ("add NUL byte", ["add", "{nul.txt}"], None, 1, "NUL byte"),
    ("add good then bad", ["add", "{good.txt}", "{nul.txt}"], None, 1, "NUL byte"),
    ("jsonl NaN", ["add", "{nan.jsonl}"], None, 1, "numbers must be finite"),
    ("jsonl Infinity", ["add", "{inf.jsonl}"], None, 1, "numbers must be finite"),
    ("jsonl 1e999", ["add", "{overflow.jsonl}"], None, 1, "numbers must be finite"),
    ("jsonl array line", ["add", "{array.jsonl}"], None, 1, "must be a JSON object"),
    ("jsonl no text", ["add", "{notext.jsonl}"], None, 1, 'needs a non-empty string field "text"'),
    ("jsonl blank text", ["add", "{emptytext.jsonl}"], None, 1, 'needs a non-empty string field "text"'),
    ("jsonl number text", ["add", "{numtext.jsonl}"], None, 1, 'needs a non-empty string field "text"'),
    ("jsonl broken", ["add", "{badjson.jsonl}"], None, 1, "not valid JSON"),
    ("jsonl lone surrogate text", ["add", "{surrogate.jsonl}"], None, 1, "not valid Unicode"),
    ("jsonl lone surrogate key", ["add", "{surrogatekey.jsonl}"], None, 1, "lone surrogate"),
    ("jsonl lone surrogate value", ["add", "{surrogatemeta.jsonl}"], None, 1, "lone surrogate"),
    ("jsonl nested 100,000 deep", ["add", "{deep.jsonl}"], None, 1, "nested too deeply"),
    ("jsonl blank lines only", ["add", "{blanklines.jsonl}"], None, 1, "no lines with text"),
    ("jsonl NUL in text", ["add", "{nultext.jsonl}"], None, 1, "NUL character"),
    ("stdin empty", ["add", "-"], "", 1, "-: the file is empty"),
    ("stdin NUL", ["add", "-"], "a\x00b", 1, "-: NUL byte"),
    ("meta without =", ["add", "{good.txt}", "--meta", "novalue"], None, 2, "--meta"),
    ("meta empty key", ["add", "{good.txt}", "--meta", "=1"], None, 2, "--meta"),
    ("meta NaN", ["add", "{good.txt}", "--meta", "x=NaN"], None, 2, "metadata numbers must be finite"),
    ("meta -Infinity", ["add", "{good.txt}", "--meta", "x=-Infinity"], None, 2, "metadata numbers must be finite"),
    ("meta 1e999", ["add", "{good.txt}", "--meta", "x=1e999"], None, 2, "metadata numbers must be finite"),
    ("meta NaN in a list", ["add", "{good.txt}", "--meta", "x=[1, NaN]"], None, 2, "metadata numbers must be finite"),
    ("meta invalid UTF-8", ["add", "{good.txt}", "--meta", f"k={SURROGATE}"], None, 1, "lone surrogate"),
    ("passage tokens zero", ["add", "{good.txt}", "--passage-tokens", "0"], None, 2, "positive"),
    ("empty namespace", ["add", "{good.txt}", "-n", ""], None, 1, "namespace must be a non-empty string"),
    ("init over a store", ["init"], None, 1, "already exists"),
    ("init bits beyond 64 bits", ["--store", "{dir}/new1.db", "init", "--bits", HUGE], None, 1, "bits"),
    ("init bits not multiple of 8", ["--store", "{dir}/new2.db", "init", "--bits", "100"], None, 1, "multiple of 8"),
    ("init negative hint bytes", ["--store", "{dir}/new3.db", "init", "--hint-bytes", "-1"], None, 1, "hint"),
    ("init unknown method", ["init", "--method", "pq"], None, 2, "--method"),
    ("store in missing directory", ["--store", "/nonexistent/dir/x.db", "stats"], None, 1, "no store at"),
    ("store is a directory", ["--store", "{dir}", "stats"], None, 2, "is a directory"),
    ("store is a FIFO", ["--store", "{fifo.txt}", "stats"], None, 1, "not a regular file"),
    ("store is foreign SQLite", ["--store", "{foreign.db}", "stats"], None, 1, "not a hashmem store"),
    ("store is a zero-byte file", ["--store", "{zero.db}", "stats"], None, 1, "no store at"),
    ("store has no tables: stats", ["--store", "{notables.db}", "stats"], None, 1, "SQLite database with no tables, not a hashmem store"),
    ("store has no tables: search", ["--store", "{notables.db}", "search", "x"], None, 1, "not a hashmem store"),
    ("store has no tables: show", ["--store", "{notables.db}", "show", "1"], None, 1, "not a hashmem store"),
    ("store has no tables: recall", ["--store", "{notables.db}", "recall", "1"], None, 1, "not a hashmem store"),
    ("store is garbage", ["--store", "{garbage.db}", "stats"], None, 1, "not a hashmem store or is corrupted"),
    ("ask empty", ["ask", ""], None, 2, "the question is empty"),
    ("ask k huge", ["ask", "x", "-k", "1000000000"], None, 1, "at most 10,000"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    store = root / "store.db"
    runner = CliRunner()
    texts = root / "seed.jsonl"
    texts.write_text("\n".join(json.dumps({"text": t, "n": i}) for i, t in enumerate([
        "The Boeing 747 flew from London to New York on 12 March 1998.",
        "Marie Curie won the Nobel Prize in Physics in 1903.",
        "The recipe needs two cups of flour, one egg and a pinch of salt.",
    ])), encoding="utf-8")
    r = runner.invoke(cli, ["--store", str(store), "add", str(texts)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    files = _files(root / "in")
    files["dir"] = str(root / "in")
    return runner, store, files


def _fill(arg: str, files: dict[str, str]) -> str:
    for name, path in files.items():
        arg = arg.replace("{" + name + "}", path)
    return arg


def _fingerprint(store: Path) -> tuple[str, str]:
    wal = Path(f"{store}-wal")
    return (hashlib.sha256(store.read_bytes()).hexdigest(),
            hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest())


def test_at_least_40_kinds():
    assert len({kind for kind, *_ in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize(("kind", "argv", "stdin", "code", "text"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(world, kind, argv, stdin, code, text):
    runner, store, files = world
    argv = [_fill(a, files) for a in argv]
    if argv[0] != "--store":
        argv = ["--store", str(store), *argv]
    touched = [Path(argv[1])] if argv[1] != str(store) and Path(argv[1]).is_file() else []
    before = _fingerprint(store), [hashlib.sha256(p.read_bytes()).hexdigest() for p in touched]
    r = runner.invoke(cli, argv, input=stdin)
    assert r.exception is None or isinstance(r.exception, SystemExit), f"{kind}: {r.exception!r}"
    assert "Traceback" not in r.output
    assert r.exit_code == code, r.output
    assert text in r.output, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    if code == 1:
        assert len(lines) == 1, r.output
    if code == 2:  # click's usage lines, then the error on one line
        assert len([ln for ln in lines if ln.startswith("Error:")]) == 1 and lines[-1].startswith("Error:"), r.output
    assert (_fingerprint(store), [hashlib.sha256(p.read_bytes()).hexdigest() for p in touched]) == before
    assert not Path("/nonexistent").exists()


def test_store_from_environment_refuses_a_missing_directory(world, monkeypatch, tmp_path):
    runner, _, files = world
    target = tmp_path / "not" / "there" / "x.db"
    monkeypatch.setenv("HASHMEM_STORE", str(target))
    r = runner.invoke(cli, ["add", files["good.txt"]])
    assert r.exit_code == 1 and "does not exist; create it first" in r.output, r.output
    assert not target.parent.exists()


def test_typed_metadata_from_the_cli(world, tmp_path):
    """--meta values are JSON when they parse: session=1 is the number 1, found by where={"session": 1}."""
    from hashmem.memory import Memory

    runner, _, files = world
    store = tmp_path / "typed.db"
    r = runner.invoke(cli, ["--store", str(store), "add", files["good.txt"], "--meta", "session=1",
                            "--meta", "flag=true", "--meta", 'label="1"', "--meta", "who=ana", "--meta", "x=null"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with Memory(store) as m:
        meta = m.get(1).metadata
        assert (meta["session"], meta["flag"], meta["label"], meta["who"], meta["x"]) == (1, True, "1", "ana", None)
        q = "a fine file"
        assert [h.id for h in m.search(q, where={"session": 1})] == [1]
        assert m.search(q, where={"session": True}) == []  # exact types: true is not 1
        assert m.search(q, where={"flag": 1}) == []
        assert [h.id for h in m.search(q, where={"flag": True})] == [1]
        assert m.search(q, where={"label": 1}) == [] and [h.id for h in m.search(q, where={"label": "1"})] == [1]
        assert [h.id for h in m.search(q, where={"x": None})] == [1]
    r = runner.invoke(cli, ["--store", str(store), "search", q, "--where", "session=1", "--json"],
                      catch_exceptions=False)
    assert [h["id"] for h in json.loads(r.output)] == [1]
    r = runner.invoke(cli, ["--store", str(store), "search", q, "--where", 'session="1"', "--json"],
                      catch_exceptions=False)
    assert json.loads(r.output) == []


def test_delete_the_same_id_twice_deletes_once_and_succeeds(world, tmp_path):
    runner, _, files = world
    store = tmp_path / "del.db"
    assert runner.invoke(cli, ["--store", str(store), "add", files["good.txt"]]).exit_code == 0
    r = runner.invoke(cli, ["--store", str(store), "delete", "1", "1"], catch_exceptions=False)
    assert r.exit_code == 0 and "deleted 1 of 1 record(s)" in r.output, r.output


def _damaged_copy(store: Path, dest: Path, offset: int, width: int = 16) -> Path:
    """A copy of the store file (checkpointed: no -wal) with ``width`` bytes inverted at ``offset``."""
    data = bytearray(store.read_bytes())
    for i in range(offset, min(offset + width, len(data))):
        data[i] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("argv", [["search", "a flight to New York"], ["stats"], ["show", "2"],
                                  ["add", "{good.txt}"], ["delete", "1"]], ids=lambda a: a[0])
def test_a_store_damaged_in_the_middle_gives_one_line_and_exit_1(world, tmp_path, argv):
    runner, store, files = world
    damaged = _damaged_copy(store, tmp_path / "damaged.db", store.stat().st_size // 2)
    before = _fingerprint(damaged)
    r = runner.invoke(cli, ["--store", str(damaged), *[_fill(a, files) for a in argv]], catch_exceptions=False)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert "is damaged; restore it from a backup" in r.output or "is corrupted" in r.output, r.output
    assert _fingerprint(damaged) == before


def test_damage_anywhere_in_a_store_is_a_store_corrupt_error(world, tmp_path):
    """Bytes inverted at each page's header and in each page's middle: every open, search, get, add and
    delete either works or raises StoreCorruptError (never an untyped exception), and a refused
    operation leaves the file as it was."""
    from hashmem.memory import Memory

    _, store, _ = world
    page, size = 16384, store.stat().st_size
    refused = 0
    for offset in sorted({*range(page, size, page), *range(page + page // 2, size, page), size // 2}):
        damaged = _damaged_copy(store, tmp_path / f"damaged-{offset}.db", offset)
        for write in (False, True):
            before = _fingerprint(damaged)
            try:
                with Memory(damaged, readonly=not write) as m:
                    m.search("a flight to New York", 3)
                    m.search("a flight", 3, mode="int8")
                    [m.get(i) for i in m.ids()]
                    m.stats()
                    if write:
                        m.add(["Zed keeps bees on the roof in Lisbon."])
                        m.delete([1])
            except StoreCorruptError:
                refused += 1
                assert _fingerprint(damaged) == before, offset
            except HashmemError as e:  # typed, but another type: say which
                raise AssertionError(f"offset {offset}: {type(e).__name__}: {e}") from e
    assert refused >= 10


def _row(value: float, dim: int = 384) -> np.ndarray:
    return np.full((1, dim), value, dtype=np.float32)


# (kind, call on an open Memory, the exception type exactly, text) — the API refuses before writing anything
API_CASES = [
    ("namespace with NUL", lambda m: m.add(["fine text"], namespace="a\x00b"), ConfigError, "NUL character"),
    ("embeddings NaN", lambda m: m.add(["fine text"], embeddings=_row(np.nan)), InputError, "NaN or infinite"),
    ("embeddings inf", lambda m: m.add(["fine text"], embeddings=_row(np.inf)), InputError, "NaN or infinite"),
    ("embeddings all zero", lambda m: m.add(["fine text"], embeddings=_row(0.0)), InputError, "all zeros"),
    ("embeddings of strings", lambda m: m.add(["fine text"], embeddings=np.array([["a"] * 384])), InputError,
     "array of numbers"),
    ("embeddings ragged", lambda m: m.add(["a", "b"], embeddings=[[0.1] * 384, [0.1]]), InputError,
     "array of numbers"),
    ("passage_tokens 0", lambda m: m.add_documents(["a document"], passage_tokens=0), InputError, "positive integer"),
    ("passage_tokens -1", lambda m: m.add_documents(["a document"], passage_tokens=-1), InputError,
     "positive integer"),
    ("passage_tokens 1.5", lambda m: m.add_documents(["a document"], passage_tokens=1.5), InputError,
     "positive integer"),
    ("get str id", lambda m: m.get("1"), InputError, "record ids are integers, got str"),
    ("get float id", lambda m: m.get(1.0), InputError, "record ids are integers, got float"),
    ("get bool id", lambda m: m.get(True), InputError, "record ids are integers, got bool"),
    ("get id 0", lambda m: m.get(0), InputError, "record ids are 1 … 2**63 - 1, got 0"),
    ("delete str id", lambda m: m.delete(["1"]), InputError, "record ids are integers, got str"),
    ("delete numpy bool id", lambda m: m.delete([np.bool_(True)]), InputError, "got bool"),
    ("delete id -1", lambda m: m.delete([-1]), InputError, "record ids are 1 … 2**63 - 1, got -1"),
    ("delete id 2**64", lambda m: m.delete([2, 2**64]), InputError, f"got {2**64}"),
    ("delete one int", lambda m: m.delete(1), InputError, "iterable of ids"),
]


@pytest.mark.parametrize(("kind", "call", "error", "text"), API_CASES, ids=[c[0] for c in API_CASES])
def test_api_refuses_bad_input_with_a_typed_error(world, kind, call, error, text):
    from hashmem.memory import Memory

    _, store, _ = world
    before = _fingerprint(store)
    with Memory(store) as m, pytest.raises(HashmemError) as e:
        call(m)
    assert type(e.value) is error and text in str(e.value), f"{kind}: {type(e.value).__name__}: {e.value}"
    assert _fingerprint(store) == before


def test_api_takes_numpy_integer_ids(world):
    from hashmem.memory import Memory

    _, store, _ = world
    with Memory(store) as m:
        assert m.get(np.int64(1)).id == 1 and m.delete([np.uint32(424242)]) == 0


def test_a_long_single_line_file_reports_progress_without_a_terminal(world, tmp_path, monkeypatch):
    """A 10 MB single-line file took minutes in silence: embedding (~40 passages/s) is the cost, linear in
    the passages (chunking 10 MB takes ~1 s, tests/test_chunk.py). Without a terminal, add now says how
    many of how many passages are stored, the rate and the time left (every 10 s; here at every passage taken)."""
    from hashmem.cli import progress

    runner, _, _ = world
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    words = random.Random(3).choices(["harbour", "ship", "sailor", "Lisbon", "tide", "rope", "captain"], k=1500)
    line = tmp_path / "one-line.txt"
    line.write_text(" ".join(words), encoding="utf-8")  # no newline, no sentence end
    r = runner.invoke(cli, ["--store", str(tmp_path / "long.db"), "add", str(line),
                            "--passage-tokens", "16"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    total = int(re.search(r"added (\d+) passages", r.output).group(1))
    reports = re.findall(r"hashmem: (\d+) of (\d+) passages stored \(\d+ %\), [\d,]+ passages/s, about .+ left",
                         r.output)
    assert total > 50 and len(reports) >= 10 and {int(t) for _, t in reports} == {total}, r.output
    counts = [int(n) for n, _ in reports]
    assert counts == sorted(set(counts)) and counts[-1] < total
