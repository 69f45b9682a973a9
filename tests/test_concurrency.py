"""Several processes on one store file: writers serialize, open handles see other processes' commits.

Real subprocesses, a real SQLite file and the real embedder; passages are few and short.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import numpy as np
import pytest

from hashmem.memory import Memory, StoreConfig, hints
from hashmem.memory.backends.local.storage import Storage

WORDS = ["harbor", "violin", "glacier", "pepper", "lantern", "orchid", "copper", "meadow", "falcon", "saddle"]


def passage(tag: str, i: int) -> str:
    return f"{tag} note {i} mentions the {WORDS[i % len(WORDS)]} and the {WORDS[(i * 3 + 1) % len(WORDS)]} {tag}{i}"


WRITER = textwrap.dedent("""
    import sys
    from hashmem.memory import Memory
    sys.path.insert(0, {tests!r})
    from test_concurrency import passage
    path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    m = Memory(path, batch_size=2)
    m.search("warm up the model", k=1)  # loads the embedder now, so that both adds overlap
    print("open", flush=True)
    sys.stdin.readline()  # start together
    ids = m.add([passage(tag, i) for i in range(n)], metadata={{"tag": tag}}, progress=False)
    print(" ".join(map(str, ids)), flush=True)
    m.close()
""").format(tests=os.path.dirname(__file__))


def _spawn(code: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("precreate", [False, True], ids=["racing-creation", "existing-store"])
def test_two_writers_creating_and_adding_at_once_keep_exact_counts(tmp_path, precreate):
    path = tmp_path / "shared.db"
    if precreate:
        Memory(path).close()
    n = 30
    procs = [_spawn(WRITER, path, tag, n) for tag in ("alpha", "beta")]
    for p in procs:  # both have opened (one created, the other found it or raced it) before adding
        assert p.stdout.readline().strip() == "open", p.stderr.read()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    acked = [int(x) for out, _ in outs for x in out.split()]
    assert len(acked) == len(set(acked)) == 2 * n

    texts = [passage(tag, i) for tag in ("alpha", "beta") for i in range(n)]
    expected_df = Counter(t for text in texts for t in hints.terms_of(hints.tokenize(text)))
    with Memory(path) as m:
        assert sorted(m.ids()) == sorted(acked)
        lex = m.storage.load_lexicon()  # raises on a gap in the term ids
        assert lex.n_docs == 2 * n
        assert {t: lex.df[i] for t, i in lex.ids.items()} == dict(expected_df)
        for tag in ("alpha", "beta"):
            top = m.search(passage(tag, 5), k=1, where={"tag": tag})
            assert top and top[0].metadata == {"tag": tag}


READER_PEER = textwrap.dedent("""
    import sys
    from hashmem.memory import Memory
    m = Memory(sys.argv[1])
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "add":
            print(" ".join(map(str, m.add([arg], progress=False))), flush=True)
        elif cmd == "delete":
            print(m.delete([int(x) for x in arg.split()]), flush=True)
        elif cmd == "refit":
            m.refit()
            print(m.hasher.generation, flush=True)
""")


def test_an_open_handle_sees_other_processes_adds_deletes_and_refits(tmp_path, passages):
    path = tmp_path / "s.db"
    mine = Memory(path, method="sign")
    mine.add(passages)
    peer = _spawn(READER_PEER, path)

    def ask(line: str) -> str:
        peer.stdin.write(line + "\n")
        peer.stdin.flush()
        out = peer.stdout.readline().strip()
        assert out, peer.stderr.read()
        return out

    try:
        (new_id,) = map(int, ask("add The zeppelin Graf Hindenburg burned at Lakehurst in 1937.").split())
        hits = mine.search("airship fire at Lakehurst", k=3)  # the handle was open before the add
        assert hits[0].id == new_id
        assert len(mine) == len(passages) + 1

        assert ask(f"delete {new_id} 1") == "2"
        hits = mine.search("airship fire at Lakehurst", k=len(passages) + 1)  # no KeyError, nothing stale
        assert {h.id for h in hits}.isdisjoint({new_id, 1})
        assert len(hits) == len(passages) - 1

        generation = int(ask("refit"))
        assert generation == mine.hasher.generation + 1
        hits = mine.search("Marie Curie Nobel Prize", k=1)
        assert mine.hasher.generation == generation  # reloaded: codes of one fit only
        assert hits[0].id == 6
        mine.storage.check(bits=mine.config.bits, dim=mine.config.dim, generation=generation)

        # and this handle writes with the peer's parameters: no mixed generations
        mine.add(["A lighthouse keeper logs the storms of 1890."])
        mine.storage.check(bits=mine.config.bits, dim=mine.config.dim, generation=generation)
    finally:
        peer.stdin.close()
        peer.wait(timeout=60)
        mine.close()


def test_refit_loses_cleanly_to_another_process_refit(tmp_path, monkeypatch):
    """A refit whose fit ran while another process refitted drops its own fit (one generation in the file)."""
    path = tmp_path / "s.db"
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((40, 384)).astype(np.float32)
    with Memory(path, method="sign") as m:
        m.add([f"vector passage {i}" for i in range(40)], embeddings=emb)
    a, b = Memory(path), Memory(path)
    try:
        from hashmem.memory import hashing

        real_fit = hashing.fit
        calls = []

        def fit_while_b_refits(*args, **kw):
            out = real_fit(*args, **kw)
            if not calls:
                calls.append(1)
                b.add([f"late passage {i}" for i in range(5)], embeddings=emb[:5] + 0.5)
                b.refit()  # commits generation g + 1 (fitted on more rows) while a is between its fit and its swap
            return out

        monkeypatch.setattr(hashing, "fit", fit_while_b_refits)
        g = a.hasher.generation
        a.refit()
        monkeypatch.setattr(hashing, "fit", real_fit)
        assert a.hasher.generation == b.hasher.generation == g + 1
        stored = hashing.Hasher.from_bytes(a.storage.get_meta("hasher"))
        assert np.array_equal(stored.mean, b.hasher.mean) and np.array_equal(stored.mean, a.hasher.mean)
        assert len(a) == len(b) == 45
        a.storage.check(bits=a.config.bits, dim=a.config.dim, generation=g + 1)
        assert a.search_embeddings(emb[:1], 1)[0][0].id == 1
    finally:
        a.close()
        b.close()


KILLED_CREATOR = textwrap.dedent("""
    import sys, time
    from hashmem.memory import Memory, config
    real = config.StoreConfig.to_json
    def slow(self):  # runs inside the creating transaction
        print("in-transaction", flush=True)
        time.sleep(120)
        return real(self)
    config.StoreConfig.to_json = slow
    Memory(sys.argv[1])
""")


def test_sigkill_during_creation_leaves_a_store_that_opens_and_works(tmp_path, passages):
    path = tmp_path / "new.db"
    proc = _spawn(KILLED_CREATOR, path)
    try:
        assert proc.stdout.readline().strip() == "in-transaction", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with Memory(path) as m:  # nothing half-made: created afresh
        ids = m.add(passages[:2])
        assert m.search("Boeing 747 passengers", k=1)[0].id == ids[0]


def test_a_store_left_without_hashing_parameters_is_finished_on_open(tmp_path, passages):
    """What a kill between the two transactions of earlier versions left: config, no hasher, no records."""
    path = tmp_path / "half.db"
    with Memory(tmp_path / "ref.db") as ref:
        config = ref.config
    s = Storage(path, create=True)
    s.initialize(StoreConfig(**{**vars(config)}))
    s.close()
    with Memory(path) as m:
        assert m.hasher.generation == 0
        m.add(passages[:2])
        assert len(m) == 2


def test_a_killed_writer_never_blocks_the_next_one(tmp_path, passages):
    """SIGKILL while holding the write lock: SQLite releases it with the process; the next add proceeds."""
    path = tmp_path / "s.db"
    with Memory(path) as m:
        m.add(passages[:2])
    holder = _spawn(textwrap.dedent("""
        import sqlite3, sys, time
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        time.sleep(120)
    """), path)
    assert holder.stdout.readline().strip() == "locked"
    with Memory(path) as m:
        t = time.perf_counter()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        m.add(passages[2:3])
        assert len(m) == 3 and time.perf_counter() - t < 30


def test_busy_write_lock_times_out_with_a_one_line_error(tmp_path, passages):
    path = tmp_path / "s.db"
    with Memory(path) as m:
        m.add(passages[:2])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        m = Memory(path)
        m.storage.busy_timeout = 0.2
        m.storage.conn.execute("PRAGMA busy_timeout = 200")
        from hashmem.memory import StoreError

        with pytest.raises(StoreError, match="another process held its write lock"):
            m.add(passages[2:3])
        assert len(m) == 2
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    m.add(passages[2:3])
    assert len(m) == 3
    m.close()


def test_interleaved_writers_share_one_lexicon(tmp_path):
    """Deterministic version of the race: two handles (two connections, as two processes) take turns."""
    path = tmp_path / "s.db"
    a = Memory(path)
    b = Memory(path)
    try:
        texts = []
        for i in range(4):
            for tag, m in (("alpha", a), ("beta", b)):
                batch = [passage(tag, 2 * i), passage(tag, 2 * i + 1)]
                m.add(batch)
                texts += batch
        expected_df = Counter(t for text in texts for t in hints.terms_of(hints.tokenize(text)))
        lex = a.storage.load_lexicon()
        assert lex.n_docs == len(texts)
        assert {t: lex.df[i] for t, i in lex.ids.items()} == dict(expected_df)
        assert len(a) == len(b) == len(texts)
    finally:
        a.close()
        b.close()


SOAK = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "soak.py")


@pytest.mark.slow
# 3 writers only: two writers on text and llm stores are tests/test_writers.py's (with kills mid-write); the
# 2-writer soaks ran here too, 82 s of the suite for a subset of these interleavings (`make soak` runs more)
@pytest.mark.parametrize(("fidelity", "writers", "readers", "seconds"), [("text", 3, 2, 12), ("llm", 3, 1, 25)])
def test_writers_and_readers_on_a_store_that_keeps_texts_lose_nothing(tmp_path, fidelity, writers, readers,
                                                                     seconds):
    """3 writer processes (adding, deleting, one SIGKILLed and restarted) and readers (one keeping
    its Memory open) on a text or llm store whose dictionary is re-trained again and again: exact
    counts, every acknowledged record present and byte-exact, no rows from an add that reported failure.
    (llm: model loading and coding are slow, so a longer run with one reader and one llama.cpp thread per
    process, as three processes share two cores.)"""
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, SOAK, "--fidelity", fidelity, "--writers", str(writers), "--readers", str(readers),
         "--seconds", str(seconds), "--rounds", "1" if fidelity == "llm" else "2", "--interval", "2",
         "--retrain-from", "16",
         "--json", str(out), *(["--llm-threads", "1"] if fidelity == "llm" else [])],
        capture_output=True, text=True, timeout=600)
    result = json.loads(out.read_text())
    summary = {k: v for k, v in result.items() if k != "untyped_errors"}
    assert proc.returncode == 0, (summary, result["untyped_errors"][:2], proc.stderr[-2000:])
    assert result["acknowledged_adds"] > 0 and result["reader_checks"] > 0, summary
    for key in ("lost_acknowledged", "incomplete_or_wrong", "unexplained_records", "rows_from_failed_adds",
                "unreadable_texts", "wrong_texts", "reader_wrong_texts", "stale_searches"):
        assert result[key] == 0, (key, summary)
    assert result["count_exact"] and result["lexicon_exact"] and not result["typed_errors"], summary
    if fidelity == "text":  # the race that corrupted bodies needs re-trainings while the others write
        assert result["text_dictionary_generation"] >= 2, summary


def test_opening_a_store_another_process_is_creating_waits_for_it(tmp_path):
    """The switch to WAL does not wait on SQLite's busy handler: while another connection holds the lock of
    its creating transaction, opening retries instead of failing with 'database is locked'."""
    path = tmp_path / "new.db"
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE early(x)")
    releaser = threading.Timer(0.5, lambda: creator.execute("ROLLBACK"))
    releaser.start()
    try:
        t = time.perf_counter()
        s = Storage(path, create=True)
        assert time.perf_counter() - t >= 0.4  # it waited for the lock, then switched
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        s.close()
    finally:
        releaser.join()
        creator.close()
