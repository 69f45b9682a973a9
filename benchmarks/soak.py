"""Soak: writers and readers on one store, then a random writer SIGKILLed every few seconds.

    .venv/bin/python benchmarks/soak.py [--fidelity hints|text|llm] [--writers 2] [--readers 4]
        [--seconds 60] [--rounds 100] [--interval 3] [--json PATH]
    make soak

Phase 1 runs ``--writers`` writer and ``--readers`` reader processes for ``--seconds`` (half the
readers keep one ``Memory`` open, the others reopen the store for every search). Phase 2 SIGKILLs a random writer every
``--interval`` seconds for ``--rounds`` rounds and starts it again. Then everything stops and
the store is checked from a fresh handle:

- counts exact: the records present are the acknowledged adds, minus the acknowledged deletes,
  plus at most whole batches whose add was issued but not acknowledged (killed after the
  commit, before the report); the lexicon's passage count and every term's document count
  equal those recomputed from every committed passage (texts are deterministic);
- every acknowledged id present (unless its delete was issued) with its exact metadata, and
  SQLite's full integrity check and the store's own check (one code generation) pass;
- on ``text`` and ``llm`` stores, every present record's text reads back byte-exact (a body
  that cannot be read counts as unreadable, one with other bytes as wrong);
- readers saw every commit older than their search: before each search a reader reads the
  newest record id with plain SQL, then searches for that record's own text filtered to it;
  a miss is stale unless the record was deleted meanwhile;
- 0 untyped errors: every exception in a worker is either a ``HashmemError`` (counted, typed)
  or an untyped one (counted, with its traceback in the JSON).

Writes ``benchmarks/results/soak.json`` (or ``--json``). Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
OUT = Path(__file__).resolve().parent / "results" / "soak.json"
WORDS = ("harbor violin glacier pepper lantern orchid copper meadow falcon saddle quartz ember "
         "tundra cobalt willow basalt nectar summit canyon marble").split()
BATCH = 4  # passages per add
TXN = 2  # passages per transaction (Memory batch_size)


def text_of(w: int, seq: int, j: int) -> str:
    """The deterministic text of passage j of writer w's add number seq."""
    r = random.Random(f"{w}:{seq}:{j}")
    words = " ".join(r.choice(WORDS) for _ in range(8))
    return f"Writer {w} add {seq} item {j}: {words} w{w}s{seq}i{j}"


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _error(e: BaseException) -> dict:
    from hashmem.memory import HashmemError

    typed = isinstance(e, HashmemError)
    return {"error": "typed" if typed else "untyped", "type": type(e).__name__, "message": str(e)[:300],
            **({} if typed else {"traceback": traceback.format_exc()[-2000:]})}


def _token_model(llm_threads: int | None):
    """The llm tier's model at a given llama.cpp thread count (None: the codec's own choice)."""
    if llm_threads is None:
        return None
    from hashmem.decoders.llmcodec import token_model

    return token_model(threads=llm_threads)


def writer(store: str, w: int, seq: int, retrain_from: int | None, llm_threads: int | None) -> None:
    from hashmem.memory import Memory
    from hashmem.memory.tiers import text as texttier

    if retrain_from:  # a short run re-trains the text dictionary as often as a long one does
        texttier.FIRST_TRAIN = retrain_from

    rng = random.Random(f"writer{w}:{seq}")
    m = None
    while True:
        try:
            if m is None:
                m = Memory(store, batch_size=TXN, token_model=_token_model(llm_threads))
            attempt = rng.getrandbits(48)  # tells this add's rows from those of another try at the same seq
            _emit({"ev": "adding", "w": w, "seq": seq, "a": attempt})
            texts = [text_of(w, seq, j) for j in range(BATCH)]
            try:
                ids = m.add(texts, metadata=[{"w": w, "seq": seq, "j": j, "a": attempt} for j in range(BATCH)],
                            progress=False)
            except Exception as e:
                _emit({"ev": "add_failed", "a": attempt, "stored": list(getattr(e, "stored_ids", []))})
                raise
            _emit({"ev": "added", "w": w, "seq": seq, "ids": ids, "t": time.time()})
            seq += 1
            if rng.random() < 0.15 and ids:
                victim = ids[rng.randrange(len(ids))]
                _emit({"ev": "deleting", "id": victim, "w": w, "seq": seq - 1, "j": ids.index(victim)})
                n = m.delete([victim])
                _emit({"ev": "deleted", "id": victim, "n": n})
        except Exception as e:  # noqa: BLE001 - a soak reports every error, typed or not
            _emit({"ev": "error", "role": "writer", **_error(e)})
            time.sleep(0.5)


def reader(store: str, r: int, keep_open: bool, read_text: bool, llm_threads: int | None) -> None:
    from hashmem.memory import Memory, RecordNotFoundError

    mem = None
    raw = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    while True:
        try:
            row = raw.execute("SELECT id, metadata FROM records ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                time.sleep(0.2)
                continue
            rid, meta = row[0], json.loads(row[1])
            if mem is None or not keep_open:
                if mem is not None:
                    mem.close()
                mem = Memory(store, readonly=True, check=False, token_model=_token_model(llm_threads))
            text = text_of(meta["w"], meta["seq"], meta["j"])
            hits = mem.search(text, k=1, where=meta)
            found = bool(hits) and hits[0].id == rid
            if found and read_text:  # the exact text too: a body another process's retraining rewrote
                try:
                    got = mem.get(rid).text
                except RecordNotFoundError:  # deleted since the search
                    got = text
                if got != text:
                    gone = raw.execute("SELECT count(*) FROM records WHERE id = ?", (rid,)).fetchone()[0] == 0
                    _emit({"ev": "wrong_text", "r": r, "id": rid, "text": got, "deleted_meanwhile": gone})
            if not found:
                gone = raw.execute("SELECT count(*) FROM records WHERE id = ?", (rid,)).fetchone()[0] == 0
                _emit({"ev": "check", "r": r, "id": rid, "ok": False, "deleted_meanwhile": gone})
            else:
                _emit({"ev": "check", "r": r, "id": rid, "ok": True})
            time.sleep(0.05)
        except Exception as e:  # noqa: BLE001
            _emit({"ev": "error", "role": "reader", "r": r, **_error(e)})
            time.sleep(0.5)


class Worker:
    def __init__(self, args: list[str], log: Path):
        self.log = log
        self.file = open(log, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, __file__, *args], stdout=self.file,
                                     stderr=subprocess.DEVNULL)

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait()
        self.file.close()


def _events(paths) -> list[dict]:
    out = []
    for p in paths:
        for line in Path(p).read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by SIGKILL
                out.append({"ev": "cut"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["writer", "reader"], default=None)
    ap.add_argument("--store", default=None)
    ap.add_argument("--id", type=int, default=0)
    ap.add_argument("--seq", type=int, default=0)
    ap.add_argument("--keep-open", action="store_true")
    ap.add_argument("--read-text", action="store_true")
    ap.add_argument("--fidelity", choices=["hints", "text", "llm"], default="hints",
                    help="the store's fidelity tier (text and llm: texts checked byte-exact too)")
    ap.add_argument("--retrain-from", type=int, default=None,
                    help="writers first re-train the text dictionary at this many passages (default: "
                         "texttier.FIRST_TRAIN): a short run then re-trains as often as a long one")
    ap.add_argument("--llm-threads", type=int, default=None,
                    help="llama.cpp threads of the llm tier in every worker (default: the codec's choice)")
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0, help="phase 1: all running, nobody killed")
    ap.add_argument("--rounds", type=int, default=100, help="phase 2: SIGKILLs of a random writer")
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between SIGKILLs")
    ap.add_argument("--json", default=str(OUT))
    args = ap.parse_args()
    if args.role == "writer":
        return writer(args.store, args.id, args.seq, args.retrain_from, args.llm_threads)
    if args.role == "reader":
        return reader(args.store, args.id, args.keep_open, args.read_text, args.llm_threads)

    from hashmem.memory import Memory

    tmp = Path(tempfile.mkdtemp(prefix="hashmem-soak-"))
    store = str(tmp / "soak.db")
    Memory(store, fidelity=args.fidelity).close()
    logs = tmp / "logs"
    logs.mkdir()
    started = time.time()
    writer_opts = ["--retrain-from", str(args.retrain_from)] if args.retrain_from else []
    if args.llm_threads:
        writer_opts += ["--llm-threads", str(args.llm_threads)]
    writers = {w: Worker(["--role", "writer", "--store", store, "--id", str(w), "--seq", "0", *writer_opts],
                         logs / f"w{w}.0.jsonl") for w in range(args.writers)}
    restarts = Counter()
    text = ["--read-text"] if args.fidelity != "hints" else []
    text += ["--llm-threads", str(args.llm_threads)] if args.llm_threads else []
    readers = [Worker(["--role", "reader", "--store", store, "--id", str(r), *text,
                       *(["--keep-open"] if r < (args.readers + 1) // 2 else [])],
                      logs / f"r{r}.jsonl") for r in range(args.readers)]
    _wait_until_working([logs / f"w{w}.0.jsonl" for w in writers], [logs / f"r{r}.jsonl" for r in range(args.readers)])
    time.sleep(args.seconds)
    rng = random.Random(0)
    for _ in range(args.rounds):
        w = rng.randrange(args.writers)
        writers[w].kill()
        events = _events(sorted(logs.glob(f"w{w}.*.jsonl")))
        next_seq = 1 + max((e["seq"] for e in events if e.get("ev") == "adding"), default=-1)
        restarts[w] += 1
        writers[w] = Worker(["--role", "writer", "--store", store, "--id", str(w), "--seq", str(next_seq), *writer_opts],
                            logs / f"w{w}.{restarts[w]}.jsonl")
        time.sleep(args.interval)
    for x in [*writers.values(), *readers]:
        x.kill()
    elapsed = time.time() - started

    events = _events(sorted(logs.glob("*.jsonl")))
    result = verify(store, events)
    result.update(fidelity=args.fidelity, writers=args.writers, readers=args.readers,
                  retrain_from=args.retrain_from, llm_threads=args.llm_threads, text_dictionary_generation=text_generation(store),
                  seconds_phase1=args.seconds, rounds=args.rounds, interval=args.interval,
                  writer_restarts=sum(restarts.values()),
                  elapsed_s=round(elapsed, 1), store=store)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "untyped_errors"}, indent=1))
    ok = not (result["lost_acknowledged"] or result["incomplete_or_wrong"] or result["stale_searches"]
              or result["unreadable_texts"] or result["wrong_texts"] or result["rows_from_failed_adds"] or result["reader_wrong_texts"]
              or result["untyped_errors"] or result["unexplained_records"] or not result["lexicon_exact"]
              or not result["integrity_ok"])
    sys.exit(0 if ok else 1)


def _wait_until_working(writer_logs: list[Path], reader_logs: list[Path], limit: float = 240.0) -> None:
    """Phase 1 starts once every writer has acknowledged an add and every reader has made a check: model
    loading (and llm coding) take a while on a loaded machine, and a run in which they never got going
    would prove nothing. At most ``limit`` s."""
    deadline = time.time() + limit

    def working() -> bool:
        return (all(p.exists() and '"ev": "added"' in p.read_text() for p in writer_logs)
                and all(p.exists() and p.stat().st_size > 0 for p in reader_logs))

    while time.time() < deadline and not working():
        time.sleep(0.5)


def text_generation(store: str) -> int:
    """The store's current text dictionary generation (how many re-trainings were adopted)."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as c:
        row = c.execute("SELECT value FROM meta WHERE key = 'text_dict'").fetchone()
    return int(row[0]) if row else 0


def verify(store: str, events: list[dict]) -> dict:
    from hashmem.memory import Memory, StoreCorruptError, hints

    acked = {i: (e["w"], e["seq"], j) for e in events if e.get("ev") == "added" for j, i in enumerate(e["ids"])}
    issued = {(e["w"], e["seq"]) for e in events if e.get("ev") == "adding"}
    deleting = {e["id"]: (e["w"], e["seq"], e["j"]) for e in events if e.get("ev") == "deleting"}
    acked_deleted = {e["id"] for e in events if e.get("ev") == "deleted" and e["n"] == 1}
    checks = [e for e in events if e.get("ev") == "check"]
    errors = [e for e in events if e.get("ev") == "error"]
    unreadable, wrong_text, attempts = [], [], {}
    with Memory(store) as m:
        m.storage.check(bits=m.config.bits, dim=m.config.dim, generation=m.hasher.generation, full=True)
        integrity = True
        present = {}
        keeps_text = m.config.fidelity != "hints"
        for i in m.ids():
            try:
                rec = m.get(i)
            except StoreCorruptError:
                unreadable.append(i)
                rec = m.backend.rows([i]).record(i)
            meta = rec.metadata
            present[i] = key = (meta.get("w"), meta.get("seq"), meta.get("j"))
            attempts[i] = meta.get("a")
            if keeps_text and i not in unreadable and rec.text != text_of(*key):
                wrong_text.append(i)
        lex = m.storage.load_lexicon()
        records = m.storage.count()
        generation = m.hasher.generation
    lost = [i for i in acked if i not in present and i not in deleting]
    # an add that raised keeps only the rows its error names as stored (AddIncompleteError.stored_ids)
    failed = {e["a"]: set(e["stored"]) for e in events if e.get("ev") == "add_failed"}
    from_failed = [i for i in present if i not in acked and attempts[i] in failed and i not in failed[attempts[i]]]
    wrong = [i for i, key in acked.items() if i in present and present[i] != key]
    unexplained = [i for i, key in present.items() if i not in acked and key[:2] not in issued]
    # whole transactions only: of an unacknowledged add, each 2-passage transaction is all there or absent
    unacked_batches = Counter((*key[:2], key[2] // TXN) for i, key in present.items() if i not in acked)
    deleted_from = {(*key[:2], key[2] // TXN) for key in deleting.values()}
    half_batches = [k for k, n in unacked_batches.items() if n != TXN and k not in deleted_from]
    deleted_committed = {i: key for i, key in deleting.items() if i not in present}
    committed = list(present.values()) + list(deleted_committed.values())
    expected_df = Counter(t for key in committed for t in hints.terms_of(hints.tokenize(text_of(*key))))
    got_df = {t: lex.df[i] for t, i in lex.ids.items()}
    lexicon_exact = lex.n_docs == len(committed) and got_df == dict(expected_df)
    stale = [c for c in checks if not c["ok"] and not c["deleted_meanwhile"]]
    return {
        "records": records,
        "acknowledged_adds": len(acked),
        "acknowledged_deletes": len(acked_deleted),
        "committed_not_acknowledged": sum(unacked_batches.values()),
        "hasher_generation": generation,
        "lost_acknowledged": len(lost),
        "incomplete_or_wrong": len(wrong) + len(half_batches),
        "unexplained_records": len(unexplained),
        "count_exact": records == len(present) and not lost and not unexplained,
        "rows_from_failed_adds": len(from_failed),
        "unreadable_texts": len(unreadable),
        "wrong_texts": len(wrong_text),
        "reader_wrong_texts": sum(1 for e in events if e.get("ev") == "wrong_text"),
        "lexicon_exact": lexicon_exact,
        "lexicon_docs": lex.n_docs,
        "integrity_ok": integrity,
        "reader_checks": len(checks),
        "reader_checks_ok": sum(c["ok"] for c in checks),
        "misses_deleted_meanwhile": sum(1 for c in checks if not c["ok"] and c["deleted_meanwhile"]),
        "stale_searches": len(stale),
        "typed_errors": Counter(f"{e['role']}: {e['type']}: {e['message'][:80]}" for e in errors
                                if e["error"] == "typed"),
        "untyped_errors": [e for e in errors if e["error"] == "untyped"],
        "cut_lines": sum(1 for e in events if e.get("ev") == "cut"),
    }


if __name__ == "__main__":
    main()
