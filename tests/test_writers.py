"""Several processes, and SIGKILL, on the write paths of ``text`` and ``llm`` stores.

The paths: a ``text`` store's bodies compressed on threads (``tiers.parallel``: a batch on a
background thread while it is tokenized, each over two compressing threads) with term index
format 2 entries (``termcode``), and an ``llm`` store's batch coded, then verified, through one
multi-sequence llama.cpp batch (``tiers.lockstep``). Real subprocesses, a real SQLite file, the
real embedder and the real GGUF; passages are short and few.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import pytest
from test_crash import _count  # committed records, read from another connection

from hashmem.memory import Memory, hints, termindex
from hashmem.memory.tiers import llm as llmtier

WORDS = ["harbor", "violin", "glacier", "pepper", "lantern", "orchid", "copper", "meadow", "falcon", "saddle"]
SYLLABLES = ["ka", "lo", "mi", "ru", "te", "vo", "pe", "da", "nu", "fi", "go", "ze"]


def word(tag: str, i: int) -> str:
    """A made-up word found in passage ``(tag, i)`` only."""
    a, b, c = i // 144 % 12, i // 12 % 12, i % 12
    return f"{tag[:2]}{SYLLABLES[a]}{SYLLABLES[b]}{SYLLABLES[c]}x"


def passage(tag: str, i: int) -> str:
    extra = " — café ünïcode" if i % 7 == 3 else ""
    return (f"{tag} note {i} mentions the {WORDS[i % 10]} near {word(tag, i)} "
            f"and the {WORDS[(i * 3 + 1) % 10]}{extra}.")


def llm_passage(tag: str, i: int) -> str:
    return f"The {WORDS[i % 10]} of {word(tag, i)} is {WORDS[(i * 3 + 1) % 10]}."


# argv: path tag n per_add batch_size fidelity; prints "open", waits for a line, prints each add's ids as JSON
WRITER = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {tests!r})
    import hashmem
    from hashmem.memory import Memory
    from hashmem.memory import refit as refitting
    from hashmem.memory.tiers import lockstep, parallel
    from hashmem.memory.tiers import text as texttier
    from test_writers import llm_passage, passage
    path, tag, n, per_add, batch, fidelity = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]), sys.argv[6]
    parallel.WORKERS = 2  # the threaded compression runs even on one core
    texttier.FIRST_TRAIN = 16  # dictionary re-trainings at 16, 32, 64, 128 and 256 passages, as the soak does
    if len(sys.argv) > 7:  # refits from this many passages on, each at twice the last, fitted during the add
        refitting.FIRST_FIT, refitting.REFIT_GROWTH = int(sys.argv[7]), 2
        real_fitted = refitting._fitted
        def slow_fitted(*a):  # the fit takes long enough for batches of both writers to go in meanwhile
            time.sleep(0.4)
            return real_fitted(*a)
        refitting._fitted = slow_fitted
    make = llm_passage if fidelity == "llm" else passage
    batches = []  # passages of each group coded through the batch model (lockstep), as it returned
    real_group = lockstep._encode_group
    def encode_group(batch, model, group):
        out = real_group(batch, model, group)
        batches.append(len(out))
        return out
    lockstep._encode_group = encode_group
    m = Memory(path, batch_size=batch)
    m.search("warm up the model", k=1)
    if fidelity == "llm":
        m._llm().model()
    print("open", flush=True)
    sys.stdin.readline()  # start together
    for start in range(0, n, per_add):
        rows = range(start, min(n, start + per_add))
        ids = m.add([make(tag, i) for i in rows], metadata=[{{"tag": tag, "i": i}} for i in rows], progress=False)
        print(json.dumps(ids), flush=True)
    print(json.dumps({{"batches": batches}}), flush=True)
    m.close()
""").format(tests=os.path.dirname(__file__))

# argv: path stop_file fidelity n; keeps one Memory open and searches (hybrid) until stop_file exists and it has
# checked a record
READER = textwrap.dedent("""
    import json, os, random, sys, time
    sys.path.insert(0, {tests!r})
    import hashmem
    from hashmem.memory import Memory
    from test_writers import llm_passage, passage, word
    path, stop, fidelity = sys.argv[1:4]
    make = llm_passage if fidelity == "llm" else passage
    m = Memory(path)
    m.search("warm up the model", k=1)
    print("open", flush=True)
    rng = random.Random(0)
    checks, found, wrong, errors, seen = 0, 0, [], [], 0
    # after the stop, one more round on the finished store (where every word finds its passage)
    while not (os.path.exists(stop) and (found and checks or errors or wrong)):
        tag, i = rng.choice(["alpha", "beta"]), rng.randrange(int(sys.argv[4]))
        try:
            n = len(m)
            if n < seen:
                wrong.append(f"count went down {{seen}} -> {{n}}")
            seen = n
            there = m.search(make(tag, i), k=1, where={{"tag": tag, "i": i}}, mode="binary+int8")
            top = m.search(word(tag, i), k=1, candidates=1000, mode="hybrid", lexical_weight=1.0)
            if there:  # committed before: its word alone (BM25 of the term index entries) must find it
                found += 1
                if top[0].id != there[0].id:
                    wrong.append(("word", word(tag, i), there[0].id, top[0].id))
            hits = m.search(word(tag, i), k=1, mode="hybrid")
            if fidelity != "llm":  # (an llm body takes a model pass per token to read)
                hits += m.search(word(tag, i), k=2, mode="hybrid", lexical_weight=1.0) + m.search(make(tag, i), k=1)
            for hit in hits:
                got = m.get(hit.id)
                if got.text != make(got.metadata["tag"], got.metadata["i"]):
                    wrong.append((hit.id, got.text))
                checks += 1
        except Exception as e:  # reported, the test fails on it
            errors.append(repr(e))
        if fidelity == "llm":
            time.sleep(0.3)  # leave the writers the cores (two of them share two with this reader)
    print(json.dumps({{"checks": checks, "found": found, "wrong": wrong[:5], "errors": errors[:5]}}), flush=True)
    m.close()
""").format(tests=os.path.dirname(__file__))


def _spawn(code: str, *args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _check_store(m: Memory, expected: dict[int, str], *, by_word: dict[int, str], alone: int = 4) -> None:
    """Exactly these records with these texts; sound file; a term index entry of each; hybrid finds each by its word.

    Texts are read together (an llm store decodes them in one batch), and ``alone`` of them one by one
    (an llm body decoded on its own sequence, as ``get`` does).
    """
    m.storage.check(bits=m.config.bits, dim=m.config.dim, generation=m.hasher.generation, full=True)
    assert sorted(m.ids()) == sorted(expected)
    ids = sorted(expected)
    assert [r.text for r in m.recall_many(ids)] == [expected[i] for i in ids]
    for i in ids[:: max(1, len(ids) // alone)]:
        assert m.get(i).text == expected[i]
    lex = m.storage.load_lexicon()  # raises on a gap in the term ids
    texts = list(expected.values())
    assert lex.n_docs == len(texts)
    want_df = Counter(t for text in texts for t in hints.terms_of(hints.tokenize(text)))
    assert {t: lex.df[i] for t, i in lex.ids.items()} == dict(want_df)
    assert m.backend.term_format() == 2
    entries = m.backend.term_entries(ids)
    assert sorted(entries) == ids  # one entry per record, made with the file's term ids
    for i in ids:
        assert bytes(entries[i]) == termindex.encode(hints.tokenize(expected[i]), lex, 2), i
    queries = [by_word[i] for i in ids]
    found = m.search_embeddings(m._embed(queries), 1, candidates=len(ids), query_texts=queries, mode="hybrid",
                                lexical_weight=1.0)
    assert [h[0].id for h in found] == ids


def _run_writers_and_reader(path, tmp_path, fidelity: str, n: int, per_add: int, batch: int, env=None,
                            first_fit: int | None = None):
    """Two writers (tags alpha, beta) and one reader at once; returns (acknowledged ids by tag, writer stats, reader).

    first_fit: the writers refit from this many passages on, then at each doubling (default: the library's).
    """
    stop = tmp_path / "stop"
    extra = [] if first_fit is None else [first_fit]
    writers = [_spawn(WRITER, path, tag, n, per_add, batch, fidelity, *extra, env=env) for tag in ("alpha", "beta")]
    reader = _spawn(READER, path, stop, fidelity, n, env=env)
    try:
        for p in (*writers, reader):
            assert p.stdout.readline().strip() == "open", p.stderr.read()
        for p in writers:
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=300) for p in writers]
        for p, (_, err) in zip(writers, outs, strict=True):
            assert p.returncode == 0, err[-3000:]
        stop.touch()  # the reader stops once it has checked a record of the finished store, if not before
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err[-3000:]
    finally:
        for p in (*writers, reader):
            if p.poll() is None:
                p.kill()
                p.wait()
    acked, stats = {}, []
    for tag, (text, _) in zip(("alpha", "beta"), outs, strict=True):
        lines = [json.loads(line) for line in text.split("\n") if line.strip()]
        acked[tag] = [i for ids in lines[:-1] for i in ids]
        stats.append(lines[-1])
    return acked, stats, json.loads(out)


def _expected(acked: dict[str, list[int]], make) -> tuple[dict[int, str], dict[int, str]]:
    texts, words = {}, {}
    for tag, ids in acked.items():
        for i, rid in enumerate(ids):
            texts[rid], words[rid] = make(tag, i), word(tag, i)
    return texts, words


@pytest.mark.slow
def test_two_text_writers_and_a_reader_lose_nothing_with_threaded_compression_and_term_index_2(tmp_path):
    """Adds of 40 (compressed by two threads of 20, on a background thread), dictionary re-trainings
    (from 16 passages on) while the other writer compresses: every acknowledged record exact."""
    path = tmp_path / "text.db"
    with Memory(path, fidelity="text") as m:
        assert m.backend.has_term_index() and m.backend.term_format() == 2
    n = 160
    acked, _, reader = _run_writers_and_reader(path, tmp_path, "text", n, per_add=40, batch=40)
    assert [len(v) for v in acked.values()] == [n, n]
    assert reader["checks"] > 0 and reader["found"] > 0 and not reader["wrong"] and not reader["errors"], reader
    texts, words = _expected(acked, passage)
    with Memory(path) as m:
        _check_store(m, texts, by_word=words)
        assert m._text_tier().current_generation() >= 2  # re-trained while the writers wrote
        assert m.add([passage("gamma", 0)]) == [max(texts) + 1]


@pytest.mark.slow
def test_two_writers_refitting_on_threads_during_their_adds_lose_nothing(tmp_path):
    """Adds of 80 in batches of 16, the refits (at 256 and 512 passages: an ITQ fit needs as many vectors
    as bits) fitted on a thread by the writer whose batch made them due while its next batches go in with
    the codes they found, the other writer's batches (and maybe its own fit, dropped if it comes second)
    in between: every acknowledged record exact, every code the final hasher's code of its vector."""
    path = tmp_path / "refits.db"
    with Memory(path, fidelity="text") as m:
        assert m.hasher.fitted_on == 0
    n = 320
    acked, _, reader = _run_writers_and_reader(path, tmp_path, "text", n, per_add=80, batch=16, first_fit=256)
    assert [len(v) for v in acked.values()] == [n, n]
    assert reader["checks"] > 0 and reader["found"] > 0 and not reader["wrong"] and not reader["errors"], reader
    texts, words = _expected(acked, passage)
    with Memory(path) as m:
        assert m.hasher.fitted_on >= 512 and m.hasher.generation == 2  # refitted twice while both wrote
        _check_store(m, texts, by_word=words)
        vec_ids, vecs = zip(*m.backend.scan("qvec"), strict=True)
        code_ids, codes = zip(*m.backend.scan("code"), strict=True)
        assert np.array_equal(np.concatenate(vec_ids), np.concatenate(code_ids))
        assert np.array_equal(np.concatenate(codes), m.hasher.encode(m.quantizer.decode(np.concatenate(vecs))))


@pytest.fixture(scope="module")
def llm_model():
    """The real GGUF (SmolLM2) through llama.cpp, one per module: the tests' own reads and adds."""
    pytest.importorskip("llama_cpp")
    from hashmem.decoders import llmcodec

    return llmcodec.token_model()  # the process's model, shared with other modules' tests


@pytest.mark.slow
def test_two_llm_writers_and_a_reader_lose_nothing_with_batched_coding(tmp_path, llm_model):
    """Each writer adds 2 batches of 3 passages (coded and verified 3 at once); every acknowledged record decodes exactly."""
    path = tmp_path / "llm.db"
    Memory(path, fidelity="llm", token_model=llm_model).close()
    n = 6
    acked, stats, reader = _run_writers_and_reader(path, tmp_path, "llm", n, per_add=3, batch=3,
                                                   env={"HASHMEM_LLM_THREADS": "1"})
    assert [len(v) for v in acked.values()] == [n, n]
    for s in stats:  # every batch of 3 was coded through the multi-sequence batch model
        assert s["batches"] == [3, 3], s
    assert reader["checks"] > 0 and reader["found"] > 0 and not reader["wrong"] and not reader["errors"], reader
    texts, words = _expected(acked, llm_passage)
    with Memory(path, token_model=llm_model) as m:
        bodies = m.storage.fetch_texts(sorted(texts))
        assert sum(b[0] == llmtier.LLM_TAG for b in bodies.values()) >= len(texts) // 2  # most are LLM-coded
        _check_store(m, texts, by_word=words)


# argv: path fidelity batch_size; adds a long stream of passages, saying "working" as each batch's coding starts
# ("retraining" as a dictionary re-training compresses the bodies with a new dictionary, on threads)
KILLED = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import hashmem
    from hashmem.memory import Memory
    from hashmem.memory.tiers import lockstep, parallel
    from hashmem.memory.tiers import text as texttier
    from test_writers import llm_passage, passage
    path, fidelity, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    parallel.WORKERS = 2
    real_compress, real_group = parallel.compress_all, lockstep._encode_group

    def compress_all(make, raws, *, threads=None):  # slowed, so that the kill lands while the threads compress
        if raws and fidelity == "text":  # (an llm store's text bodies are only its fallbacks)
            print("retraining" if busy else "working", flush=True)
        def slow():
            comp = make()
            class Slow:
                def compress(self, raw):
                    time.sleep(0.004)
                    return comp.compress(raw)
            return Slow()
        return real_compress(slow, raws, threads=threads)

    def encode_group(batch_model, model, group):
        print("working", flush=True)
        return real_group(batch_model, model, group)

    busy = []
    real_retrain = texttier.TextTier.maybe_retrain

    def maybe_retrain(self, **kw):
        busy.append(1)
        try:
            return real_retrain(self, **kw)
        finally:
            busy.pop()

    parallel.compress_all, lockstep._encode_group = compress_all, encode_group
    texttier.TextTier.maybe_retrain = maybe_retrain
    make = llm_passage if fidelity == "llm" else passage
    m = Memory(path, fidelity=fidelity, batch_size=batch)
    n = 30 if fidelity == "llm" else 1500
    m.add([make("kill", i) for i in range(n)], metadata=[{{"i": i}} for i in range(n)], progress=False)
""").format(tests=os.path.dirname(__file__))


def _kill_while_working(path, fidelity: str, batch: int, committed: int, env=None, at: str = "working") -> None:
    """Start KILLED; SIGKILL it as a batch's compression (text) or batched coding (llm), or with ``at="retraining"``
    a re-training's compression, starts once ``committed`` records are in the file."""
    proc = _spawn(KILLED, path, fidelity, batch, env=env)
    try:
        for line in proc.stdout:
            if line.strip() == at and _count(path) >= committed:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-3000:]


def _check_after_kill(m: Memory, make, batch: int, committed: int) -> int:
    """Whole batches only, each record exact and indexed; returns the record count."""
    n = len(m)
    assert n >= committed and n % batch == 0
    assert m.ids() == list(range(1, n + 1))
    assert [m.get(i).metadata["i"] for i in (1, n)] == [0, n - 1]
    _check_store(m, {i + 1: make("kill", i) for i in range(n)}, by_word={i + 1: word("kill", i) for i in range(n)})
    return n


@pytest.mark.slow
@pytest.mark.parametrize("at", ["working", "retraining"], ids=["batch", "retraining"])
def test_sigkill_while_text_bodies_compress_on_threads_leaves_a_sound_store(tmp_path, at):
    """Killed while the next batch's bodies compress on a background thread over two threads (after
    3 batches of 48 and a dictionary re-training), or while the first re-training (after 2 batches)
    recompresses the bodies on threads: reopened, sound, exact, it takes a new add and re-trains."""
    path = tmp_path / "killed.db"
    committed = 3 * 48 if at == "working" else 2 * 48
    _kill_while_working(path, "text", 48, committed, at=at)
    with Memory(path) as m:  # opening runs the integrity check
        n = _check_after_kill(m, passage, 48, committed)
        assert m._text_tier().current_generation() == (1 if at == "working" else 0)
        assert m.add([passage("kill", n)], metadata={"i": n}) == [n + 1]
        assert m.get(n + 1).text == passage("kill", n)
        assert m._text_tier().current_generation() == 1  # (retraining: the add's upkeep re-trained after the kill)
        _check_after_kill(m, passage, 1, n + 1)


@pytest.mark.slow
def test_sigkill_while_an_llm_batch_is_coded_leaves_a_sound_store(tmp_path, llm_model):
    """Killed while a batch of 3 is coded through the batch model (after one batch committed)."""
    path = tmp_path / "killed.db"
    _kill_while_working(path, "llm", 3, 3, env={"HASHMEM_LLM_THREADS": "1"})
    with Memory(path, token_model=llm_model) as m:
        n = _check_after_kill(m, llm_passage, 3, 3)
        late = [llm_passage("kill", i) for i in range(n, n + 3)]
        assert m.add(late, metadata=[{"i": i} for i in range(n, n + 3)]) == [n + 1, n + 2, n + 3]
        assert m._llm().last_stats.coded >= 2 and m.get(n + 2).text == late[1]
