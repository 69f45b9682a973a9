"""Golden test: a fixed pair of stores gives byte-identical outputs through every public surface.

It guards refactors that must not change behaviour (issue 17): the two stores are built here
from the shared data (``../shared/data``) with the real embedder and default settings, and what
the library, the CLI and the HTTP API answer about them is compared with ``tests/golden/golden.json``.
Any change of an id, a score (compared as ``float.hex``, so to the last bit), a Hamming
distance, a hint, a code or vector byte, a recalled text, a stats field or a byte of JSON fails.

The stores (built once per module, shared by the tests):

- ``hints.db`` (default settings, fidelity ``hints``): namespace ``scifact``, the first 100
  SciFact-train abstracts (metadata ``doc``, ``shard``); namespace ``locomo``, the first 960
  LoCoMo turns (two conversations and the start of a third; metadata ``conv``, ``session``,
  ``speaker``), added in two calls: the first brings the store to 1,030 passages, past the first
  refit's 1,024, so the store refits on its own; the second's 30 are coded by the refitted hasher.
- ``text.db`` (fidelity ``text``): namespace ``default``, the first 250 turns of a fourth
  conversation; namespace ``papers``, the next 20 abstracts; refitted by an explicit ``refit()``
  (an ITQ fit of 256 bits needs at least 256 passages).
- Then a few deletes in each (searches, gets and stats are taken after them).

Only the surfaces that outlive the refactor are used: ``from hashmem import Memory, open_decoder``
(and the public exceptions), the ``hashmem`` command in a subprocess, and ``hashmem serve`` over
HTTP. Nothing of ``hashmem.memory``'s modules is imported.

What is not compared, and why (found by building the stores twice and diffing everything):

- ``created`` (a record's insertion time, in ``get``, ``show --json``, ``GET /v1/passages/{id}``):
  the wall clock. It is checked to lie within the build instead.
- ``ms`` (a reconstruction's or an answer's wall time, in recall and ask results): the clock.
- the store's path (``stats --json``'s ``path``, error messages): a temporary directory.

Everything else was identical from build to build and from process to process, the file's sizes
too (``stats``' ``file_bytes``, ``file_parts`` with the WAL, ``bytes_per_passage['file']``), so
they are compared: a change of what is written to the file, or of how the writes are grouped into
transactions, moves them, and regenerating the golden file then says so in its commit.

The numbers also depend on the embedder's runtime (onnxruntime, numpy) and SQLite: the golden
file records their versions (``made_with``, not compared) and a failure shows them when they
differ. A behaviour change that is meant: regenerate the golden file with
``HASHMEM_GOLDEN_UPDATE=1 pytest tests/test_golden.py`` and commit it with the change, saying why
the outputs moved. Without that variable a missing golden file fails the test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import DATA, serve_process

from hashmem import Memory, RecordNotFoundError, open_decoder

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).resolve().parent / "golden" / "golden.json"
UPDATE = os.environ.get("HASHMEM_GOLDEN_UPDATE") == "1"
SCIFACT = DATA / "scifact-train"
LOCOMO = DATA / "locomo"
MODES = ("binary+int8", "binary", "int8")
K = 10
CLI = [sys.executable, "-c", "from hashmem.cli.main import main; main()"]
# JSON numbers that are clocks: replaced in the raw text, so every other byte is compared
_CLOCK = re.compile(r'"(created|ms)":( ?)(-?[0-9][0-9.eE+-]*)')


# -- the data ----------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _data() -> dict:
    """The fixed inputs, in file order (counts asserted: a change of the shared data says so)."""
    for f in (SCIFACT / "corpus.jsonl", LOCOMO / "corpus.jsonl"):
        if not f.exists():
            if os.environ.get("CI"):
                pytest.fail(f"the golden test needs the shared data: {f} is missing")
            pytest.skip(f"the golden test needs the shared data: {f} is missing")
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = [json.loads(next(f)) for _ in range(120)]
    papers, more_papers = corpus[:100], corpus[100:]
    in_store = {p["_id"] for p in papers}
    with (SCIFACT / "qrels.tsv").open(encoding="utf-8") as f:
        relevant = {row.split("\t")[0] for row in list(f)[1:] if row.split("\t")[1] in in_store}
    claims = _jsonl(SCIFACT / "queries.jsonl")
    claims = ([q for q in claims if q["_id"] in relevant] + [q for q in claims if q["_id"] not in relevant][:4])
    turns = _jsonl(LOCOMO / "corpus.jsonl")
    chat = turns[:960]  # conv-26, conv-30 and the start of conv-41
    chat3 = [t for t in turns if t["conv"] == "conv-43"][:250]
    questions = _jsonl(LOCOMO / "queries.jsonl")
    asked = {c: [q for q in questions if q["conv"] == c][:5] for c in ("conv-26", "conv-30", "conv-41", "conv-43")}
    assert (len(claims), len({t["conv"] for t in chat}), len(chat3)) == (20, 3, 250), "the shared data changed"
    return {"papers": papers, "more_papers": more_papers, "claims": claims, "chat": chat,
            "chat3": chat3, "asked": asked}


def _paper_text(p: dict) -> str:
    return f"{p['title']} {p['text']}"


def _turn_meta(t: dict) -> dict:
    return {"conv": t["conv"], "session": t["session"], "speaker": t["speaker"]}


# -- recording -----------------------------------------------------------------------------------


def _hits(hits) -> list[str]:
    """Hits as 'id score hamming', the score as float.hex (exact to the bit)."""
    return [f"{h.id} {float(h.score).hex()} {h.hamming}" for h in hits]


def _spans(ids) -> list[list[int]]:
    """Ascending ids as [first, last] runs (compact, and a missing or extra id shows)."""
    out: list[list[int]] = []
    for i in ids:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def _record(mem: Memory, id: int, window: tuple[float, float]) -> dict:
    r = mem.get(id)
    assert isinstance(r.created, float) and window[0] - 1 <= r.created <= window[1] + 1, r.created
    return {"namespace": r.namespace, "metadata": r.metadata, "hints": r.hints,
            "code": r.code.tobytes().hex(), "qvec": r.qvec.tobytes().hex(), "text": r.text}


def _digest(mem: Memory) -> dict:
    """sha256 over every live record (all but ``created``): a change anywhere in a store shows."""
    h = hashlib.sha256()
    ids = mem.ids()
    for i in ids:
        r = mem.get(i)
        h.update(json.dumps([i, r.namespace, r.metadata, r.hints, r.code.tobytes().hex(),
                             r.qvec.tobytes().hex(), r.text], ensure_ascii=False).encode())
    return {"records": len(ids), "sha256": h.hexdigest()}


def _stats(mem: Memory) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(mem.stats())))


def _reconstruction(r) -> dict:
    d = dataclasses.asdict(r)
    assert d.pop("ms") >= 0
    d["fidelity"] = float(d["fidelity"]).hex()
    d["unsupported"] = list(d["unsupported"])
    return d


def _answer(a) -> dict:
    d = dataclasses.asdict(a)
    assert d.pop("ms") >= 0
    d["unsupported"] = list(d["unsupported"])
    return d


def _searches(mem: Memory, namespace: str, text: str, where: dict | None, extra: dict) -> dict:
    out = {"q": text}
    for mode in MODES:
        out[mode] = _hits(mem.search(text, K, namespace=namespace, where=where, mode=mode))
    for name, kw in extra.items():
        out[name] = _hits(mem.search(text, K, namespace=namespace, **kw))
    # deeper than the top 10: the rerank's pool (its default size, the asymmetric stage) shows here
    out["k50"] = _hits(mem.search(text, 50, namespace=namespace, where=where))
    top = mem.search(text, 1, namespace=namespace, where=where)
    out["top"] = [dataclasses.asdict(h) | {"score": float(h.score).hex()} for h in top]
    return out


def _unclock(raw: str, window: tuple[float, float]) -> str:
    """Raw JSON text with its clock values replaced (each checked first: a plausible time)."""
    def sub(m):
        v = float(m.group(3))
        if m.group(1) == "created":
            assert window[0] - 1 <= v <= window[1] + 1, v
        else:
            assert v >= 0, v
        return f'"{m.group(1)}":{m.group(2)}"<clock>"'

    return _CLOCK.sub(sub, raw)


def _unpath(text: str, tmp: Path) -> str:
    return text.replace(str(tmp), "<tmp>")


@dataclasses.dataclass
class Built:
    tmp: Path
    data: dict
    hints: Memory
    text: Memory
    window: tuple[float, float]
    deleted: dict
    picks: dict  # store -> ids whose records, recalls and JSON are recorded


def build(tmp: Path) -> Built:
    """Build the two stores (see the module's docstring)."""
    d = _data()
    started = time.time()
    hints = Memory(tmp / "hints.db")
    papers = hints.add([_paper_text(p) for p in d["papers"]], namespace="scifact", progress=False,
                       metadata=[{"doc": p["_id"], "shard": i % 4} for i, p in enumerate(d["papers"])])
    assert hints.stats().hasher["generation"] == 0
    # 1,030 passages: past the first refit's 1,024, so the store refits after this add's last batch
    chat = hints.add([t["text"] for t in d["chat"][:930]], namespace="locomo", progress=False,
                     metadata=[_turn_meta(t) for t in d["chat"][:930]])
    assert hints.stats().hasher["generation"] == 1, "the store did not refit on its own"
    # coded with the refitted hasher
    chat += hints.add([t["text"] for t in d["chat"][930:]], namespace="locomo", progress=False,
                      metadata=[_turn_meta(t) for t in d["chat"][930:]])
    text = Memory(tmp / "text.db", fidelity="text")
    chat3 = text.add([t["text"] for t in d["chat3"]], progress=False,
                     metadata=[_turn_meta(t) for t in d["chat3"]])
    more = text.add([_paper_text(p) for p in d["more_papers"]], namespace="papers", progress=False,
                    metadata=[{"doc": p["_id"]} for p in d["more_papers"]])
    assert text.stats().hasher["generation"] == 0
    text.refit()
    assert text.stats().hasher["generation"] == 1
    deleted = {"hints": [papers[7], papers[50], chat[3]], "text": [chat3[10], more[5]]}
    assert hints.delete(deleted["hints"] + [10**9]) == 3
    assert text.delete(deleted["text"]) == 2
    picks = {"hints": [papers[0], papers[51], papers[-1], chat[0], chat[400], chat[-1]],
             "text": [chat3[0], chat3[-1], more[0], more[-1]]}
    return Built(tmp, d, hints, text, (started, time.time()), deleted, picks)


def record_api(b: Built) -> dict:
    """What the library answers: searches (3 modes, fewer candidates, filters), records, stats, recall."""
    d, out = b.data, {}
    out["inputs"] = hashlib.sha256(json.dumps(
        [d["papers"], d["more_papers"], d["claims"], d["chat"], d["chat3"], d["asked"]],
        sort_keys=True).encode()).hexdigest()
    searches = {}
    for q in d["claims"]:
        searches[f"scifact:{q['_id']}"] = _searches(
            b.hints, "scifact", q["text"], None,
            {"c10": {"candidates": 10}, "c10_binary": {"candidates": 10, "mode": "binary"},
             "shard1": {"where": {"shard": 1}}, "shard1_int8": {"where": {"shard": 1}, "mode": "int8"}})
    for conv in ("conv-26", "conv-30", "conv-41"):
        for q in d["asked"][conv]:
            searches[f"locomo:{q['_id']}"] = _searches(
                b.hints, "locomo", q["text"], {"conv": conv},
                {"all_convs": {}, "c20": {"where": {"conv": conv}, "candidates": 20}})
    for q in d["asked"]["conv-43"]:
        searches[f"text:{q['_id']}"] = _searches(b.text, "default", q["text"], None,
                                                 {"c20": {"candidates": 20}})
    for q in d["claims"][:5]:
        searches[f"text-papers:{q['_id']}"] = _searches(b.text, "papers", q["text"], None, {})
    out["search"] = searches
    for name, mem in (("hints", b.hints), ("text", b.text)):
        dec = open_decoder(mem, "extractive")
        s = {
            "len": len(mem),
            "namespaces": mem.namespaces(),
            "ids": {ns: _spans(mem.ids(ns)) for ns in mem.namespaces()},
            "records": {str(i): _record(mem, i, b.window) for i in b.picks[name]},
            "recall": {str(i): _reconstruction(dec.reconstruct(i)) for i in b.picks[name]},
            "digest": _digest(mem),
            "stats": _stats(mem),
            "deleted": {},
        }
        for i in b.deleted[name]:
            with pytest.raises(RecordNotFoundError) as e:
                mem.get(i)
            s["deleted"][str(i)] = _unpath(str(e.value), b.tmp)
        out[name] = s
    out["hints"]["find_ids"] = {
        "caroline": _spans(b.hints.find_ids({"speaker": "Caroline"}, namespace="locomo")),
        "conv-30,session 2": _spans(b.hints.find_ids({"conv": "conv-30", "session": 2}, namespace="locomo")),
        "shard 3": _spans(b.hints.find_ids({"shard": 3}, namespace="scifact")),
    }
    asks = {}
    for name, mem, ns, questions in (("hints", b.hints, "locomo", d["asked"]["conv-26"]),
                                     ("text", b.text, "default", d["asked"]["conv-43"])):
        dec = open_decoder(mem, "extractive")
        for q in questions[:3]:
            asks[f"{name}:{q['_id']}"] = _answer(dec.ask(q["text"], mem.search(q["text"], 5, namespace=ns)))
    out["ask"] = asks
    return out


def _cli(b: Built, store: str, *args: str) -> str:
    p = subprocess.run([*CLI, "--store", str(b.tmp / store), *args], capture_output=True, text=True,
                       timeout=120, env={**os.environ})
    assert p.returncode == 0, p.stderr
    return _unpath(_unclock(p.stdout, b.window), b.tmp)


def record_cli(b: Built) -> dict:
    """``hashmem ... --json``: search (with a filter), show, recall (extractive), stats; raw stdout."""
    claim, turn_q, turn3_q = b.data["claims"][0], b.data["asked"]["conv-26"][0], b.data["asked"]["conv-43"][1]
    h, t = b.picks["hints"], b.picks["text"]
    return {
        "search scifact": _cli(b, "hints.db", "search", claim["text"], "-n", "scifact", "--json"),
        "search locomo where": _cli(b, "hints.db", "search", turn_q["text"], "-n", "locomo", "-k", "5",
                                    "--where", "conv=conv-26", "--where", "speaker=Caroline", "--json"),
        "search text": _cli(b, "text.db", "search", turn3_q["text"], "-k", "5", "--candidates", "20",
                            "--json"),
        "show hints": _cli(b, "hints.db", "show", str(h[3]), "--json"),
        "show text": _cli(b, "text.db", "show", str(t[2]), "--json"),
        "recall hints": _cli(b, "hints.db", "recall", str(h[1]), "--decoder", "extractive", "--json"),
        "recall text": _cli(b, "text.db", "recall", str(t[0]), "--decoder", "extractive", "--json"),
        "stats hints": _cli(b, "hints.db", "stats", "--json"),
        "stats text": _cli(b, "text.db", "stats", "--json"),
    }


def record_http(b: Built) -> dict:
    """``hashmem serve --decoder extractive`` on each store: status and raw body of each request."""
    import httpx

    out = {}
    with ExitStack() as stack:
        for store in ("hints", "text"):
            _, url = stack.enter_context(serve_process(b.tmp / f"{store}.db", "--decoder", "extractive"))
            c = stack.enter_context(httpx.Client(base_url=url, timeout=120))

            def put(key, r, store=store):
                out[f"{store} {key}"] = f"{r.status_code} {_unpath(_unclock(r.text, b.window), b.tmp)}"

            if store == "hints":
                for q in b.data["claims"][:4]:
                    put(f"search {q['_id']}", c.post("/v1/search", json={"query": q["text"], "namespace": "scifact"}))
                q = b.data["claims"][4]["text"]
                put("search shard", c.post("/v1/search", json={"query": q, "namespace": "scifact",
                                                                "where": {"shard": 2}, "k": 5, "candidates": 12}))
                for q in b.data["asked"]["conv-30"][:3]:
                    put(f"search {q['_id']}", c.post("/v1/search", json={
                        "query": q["text"], "namespace": "locomo", "where": {"conv": "conv-30"}, "k": 5}))
                q = b.data["asked"]["conv-26"][1]["text"]
                put("search recall", c.post("/v1/search", json={"query": q, "namespace": "locomo", "k": 3,
                                                                 "recall": True}))
                put("ask", c.post("/v1/ask", json={"question": q, "namespace": "locomo"}))
            else:
                for q in b.data["asked"]["conv-43"][:3]:
                    put(f"search {q['_id']}", c.post("/v1/search", json={"query": q["text"]}))
                q = b.data["asked"]["conv-43"][3]["text"]
                put("search recall", c.post("/v1/search", json={"query": q, "k": 3, "recall": True}))
                put("ask", c.post("/v1/ask", json={"question": q}))
            for i in b.picks[store]:
                put(f"get {i}", c.get(f"/v1/passages/{i}"))
                put(f"recall {i}", c.post(f"/v1/passages/{i}/recall"))
            put(f"get deleted {b.deleted[store][0]}", c.get(f"/v1/passages/{b.deleted[store][0]}"))
            put("stats", c.get("/v1/stats"))
    return out


# -- comparing ---------------------------------------------------------------------------------


def _flat(x, path: str = "") -> dict:
    if isinstance(x, dict):
        return {k: v for key, val in x.items() for k, v in _flat(val, f"{path}/{key}").items()} or {path: {}}
    if isinstance(x, list):
        return {k: v for i, val in enumerate(x) for k, v in _flat(val, f"{path}[{i}]").items()} or {path: []}
    return {path: x}


def _short(v) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= 160 else s[:157] + "..."


def _diff(want, got, limit: int = 12) -> str:
    a, b = _flat(want), _flat(got)
    keys = list(a) + [k for k in b if k not in a]  # the golden file's order, then what is new
    differ = [k for k in keys if a.get(k, "<absent>") != b.get(k, "<absent>")]
    where: dict[str, int] = {}  # differences per entry (a path's first three parts, no list index)
    for k in differ:
        part = "/".join(re.sub(r"\[\d+\]", "", k).split("/")[:4])
        where[part] = where.get(part, 0) + 1
    lines = []
    for k in differ[:limit]:
        x, y = a.get(k, "<absent>"), b.get(k, "<absent>")
        if isinstance(x, str) and isinstance(y, str) and len(x) + len(y) > 200:  # raw output: where it parts
            i = next((j for j, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
            k, x, y = f"{k} (from character {i})", x[max(0, i - 40):i + 100], y[max(0, i - 40):i + 100]
        lines.append(f"{k}\n    golden: {_short(x)}\n    now:    {_short(y)}")
    return (f"{len(differ)} value(s) differ, in {len(where)} entries: "
            + ", ".join(f"{p} ({n})" for p, n in list(where.items())[:10]) + (", ..." if len(where) > 10 else "")
            + f"\nthe first {len(lines)}:\n" + "\n".join(lines))


def _made_with() -> dict:
    """What the numbers depend on besides hashmem (written beside the sections, never compared)."""
    import importlib.metadata
    import platform
    import sqlite3

    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "machine": platform.machine()}
    for dist in ("numpy", "onnxruntime", "numba"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def check_golden(section: str, got: dict) -> None:
    """Compare a section with the golden file, or (HASHMEM_GOLDEN_UPDATE=1) write it there."""
    got = json.loads(json.dumps(got, ensure_ascii=False))
    if UPDATE:
        golden = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
        golden[section] = got
        golden["made_with"] = _made_with()
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                          encoding="utf-8")
        return
    if not GOLDEN.exists():
        pytest.fail(f"{GOLDEN} is missing: make it with HASHMEM_GOLDEN_UPDATE=1 pytest {__file__}")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    want = golden.get(section)
    assert want is not None, f"{GOLDEN} has no section {section!r}: regenerate it (HASHMEM_GOLDEN_UPDATE=1)"
    if want != got:
        made, now = golden.get("made_with"), _made_with()
        note = f"\n(the golden file was made with {made}; this run has {now})" if made != now else ""
        pytest.fail(f"{section}: the outputs differ from {GOLDEN.name} (HASHMEM_GOLDEN_UPDATE=1 "
                    f"regenerates it, for a change that is meant)\n{_diff(want, got)}{note}", pytrace=False)


# -- tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not UPDATE and not GOLDEN.exists():  # before the minute of building
        pytest.fail(f"{GOLDEN} is missing: make it with HASHMEM_GOLDEN_UPDATE=1 pytest {__file__}")
    b = build(tmp_path_factory.mktemp("golden"))
    yield b
    b.hints.close()
    b.text.close()


def test_library(built):
    out = record_api(built)
    # checks that hold whatever the golden file says
    for key, s in out["search"].items():  # deleted records are never found
        gone = set(built.deleted["text" if key.startswith("text") else "hints"])
        for name, hits in s.items():
            if name not in ("q", "top"):
                assert hits and not {int(h.split()[0]) for h in hits} & gone, (key, name)
    for i in built.picks["text"]:
        r = out["text"]["recall"][str(i)]
        assert r["exact"] and r["text"] == out["text"]["records"][str(i)]["text"]
    assert out["text"]["records"][str(built.picks["text"][0])]["text"] == built.data["chat3"][0]["text"]
    check_golden("library", out)


def test_cli(built):
    out = record_cli(built)
    ids = [h["id"] for h in json.loads(out["search scifact"])]
    assert ids == [h.id for h in built.hints.search(built.data["claims"][0]["text"], K, namespace="scifact")]
    check_golden("cli", out)


def test_http(built):
    pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    out = record_http(built)
    q = built.data["claims"][0]
    body = json.loads(out[f"hints search {q['_id']}"].split(" ", 1)[1])
    assert [h["id"] for h in body["hits"]] == [h.id for h in built.hints.search(q["text"], K, namespace="scifact")]
    check_golden("http", out)
