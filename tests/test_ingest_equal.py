"""Ingest speed-ups keep the stored bytes: threaded zstd (``tiers.parallel``) and ``termindex.encode``.

Real SciFact abstracts, real SQLite, fixed random embeddings (the bytes compared do not depend on
what the vectors mean). A store made on threads must hold the very rows one thread makes; the
term index entries must be the bytes of the encoder they replaced (kept here as the reference).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter

import msgpack
import numpy as np
import pytest
import zstandard
from conftest import DATA

from hashmem.memory import Memory, hints, lexical, termcode, termindex
from hashmem.memory.tiers import parallel
from hashmem.memory.tiers import text as tt


def _texts(n: int) -> list[str]:
    with (DATA / "scifact-train" / "corpus.jsonl").open(encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(n), f, strict=False)]
    return [(d["title"] + "\n" + d["text"]).strip() for d in docs]


TEXTS = _texts(700)


def _rows(path) -> dict[str, list[tuple]]:
    """Every row of the tables a text store's ingest writes, in id order."""
    conn = sqlite3.connect(path)
    try:
        return {
            "texts": conn.execute("SELECT id, body FROM texts ORDER BY id").fetchall(),
            "term_index": conn.execute("SELECT * FROM term_index ORDER BY id").fetchall(),
            "records": conn.execute("SELECT * FROM records ORDER BY id").fetchall(),
            "meta": conn.execute("SELECT key, value FROM meta WHERE key LIKE 'text_dict%' ORDER BY key").fetchall(),
        }
    finally:
        conn.close()


def test_a_text_store_made_on_threads_holds_the_bytes_one_thread_makes(tmp_path, monkeypatch):
    emb = np.random.default_rng(0).standard_normal((len(TEXTS), 384)).astype(np.float32)
    pools = []
    real_pool = parallel.ThreadPoolExecutor

    def counting_pool(n):
        pools.append(n)
        return real_pool(n)

    monkeypatch.setattr(parallel, "ThreadPoolExecutor", counting_pool)
    made = {}
    for workers in (1, 3):
        monkeypatch.setattr(parallel, "WORKERS", workers)
        path = tmp_path / f"w{workers}.db"
        with Memory(path, fidelity="text", batch_size=200) as mem:
            mem.add(TEXTS[:450], embeddings=emb[:450], progress=False)
            mem.add(TEXTS[450:], embeddings=emb[450:], progress=False)  # a second retraining
            assert [mem.get(i).text for i in (1, 449, 699)] == [TEXTS[0], TEXTS[448], TEXTS[698]]
        made[workers] = _rows(path)
        if workers == 1:
            assert not pools  # one thread: no pool at all
    assert pools and max(pools) == 3  # the bodies and the dictionary sizes went to threads
    one, many = made[1], made[3]
    gen = int(dict(one["meta"])["text_dict"])
    assert len(one["texts"]) == len(TEXTS) and gen >= 1  # a dictionary was adopted
    assert {b[0] for _, b in one["texts"]} - {tt.RAW} == {tt.PLAIN + gen}  # every body made under it
    for table in one:
        assert one[table] == many[table], table


def test_compress_all_keeps_the_order_and_raises_a_threads_error():
    raws = [t.encode() for t in TEXTS[:100]]
    params = zstandard.ZstdCompressionParameters.from_level(3)
    serial = [zstandard.ZstdCompressor(compression_params=params).compress(r) for r in raws]
    for threads in (1, 2, 3, 7):
        got = parallel.compress_all(lambda: zstandard.ZstdCompressor(compression_params=params), raws,
                                    threads=threads)
        assert got == serial, threads

    class Broken:
        def compress(self, raw):
            if raw == raws[-1]:
                raise zstandard.ZstdError("boom")
            return raw

    with pytest.raises(zstandard.ZstdError, match="boom"):
        parallel.compress_all(Broken, raws, threads=4)
    assert parallel.map_threads(lambda x: x * x, list(range(9))) == [x * x for x in range(9)]


def _reference_encode(tokens, lexicon, max_terms):
    """``termindex.encode`` before it was sped up (numpy gaps, a Python loop per token)."""
    words: Counter[int] = Counter()
    numbers: Counter[str] = Counter()
    for _, key, _, kind in tokens:
        if kind == "number":
            numbers[key.lower()] += 1
        else:
            words[lexicon.ids[key]] += 1
    if max_terms is not None and len(words) + len(numbers) > max_terms:
        n, top = lexicon.n_docs, math.log(1.0 + (max(lexicon.n_docs - 1, 0) + 0.5) / 1.5)
        df = lexicon.df
        weight = [(-top * c / (c + lexical.K1), 0, s, c) for s, c in numbers.items()]
        weight += [(-math.log(1.0 + (max(n - df[i], 0) + 0.5) / (df[i] + 0.5)) * c / (c + lexical.K1), 1, i, c)
                   for i, c in words.items()]
        kept = sorted(weight)[:max_terms]
        words = Counter({i: c for _, kind, i, c in kept if kind == 1})
        numbers = Counter({s: c for _, kind, s, c in kept if kind == 0})
    ids = sorted(words)
    gaps = np.diff(np.asarray(ids, np.int64), prepend=0).tolist()
    out = bytearray()
    for v in [g << 1 | (words[i] > 1) for g, i in zip(gaps, ids, strict=True)]:
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return termindex.TermStats(len(tokens), bytes(out), bytes(min(words[i], 255) for i in ids if words[i] > 1),
                               msgpack.packb(dict(sorted(numbers.items()))) if numbers else None)


@pytest.mark.parametrize("max_terms", [None, 24])
def test_term_index_entries_are_the_reference_encoders_bytes(monkeypatch, max_terms):
    # SciFact passages and a few edge cases: no terms, only numbers, a count above 255, big ids
    texts = TEXTS + ["2020 1998 12.5%", "vortex " * 300 + "1998 " * 3, "zebra"]
    toks = [hints.tokenize(t) for t in texts] + [[]]
    lexicon = hints.Lexicon()
    lexicon.observe([{f"pad{i}" for i in range(20000)}])  # ids past 2**14: three-byte varints
    lexicon.observe([hints.terms_of(t) for t in toks])
    monkeypatch.setattr(termindex, "MAX_TERMS", max_terms)
    entries = [termindex.encode(t, lexicon, 1) for t in toks]
    assert entries == [_reference_encode(t, lexicon, max_terms) for t in toks]
    assert any(e.counts for e in entries) and any(e.numbers for e in entries) and entries[-1].terms == b""
    assert max(entries[-3].counts) == 255


def test_an_error_compressing_on_the_background_thread_fails_the_add_and_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "WORKERS", 2)

    def broken(self, texts, **kw):
        raise zstandard.ZstdError("compression failed")

    emb = np.random.default_rng(0).standard_normal((3, 384)).astype(np.float32)
    with Memory(tmp_path / "t.db", fidelity="text") as mem:
        monkeypatch.setattr(tt.TextTier, "encode", broken)
        with pytest.raises(zstandard.ZstdError, match="compression failed"):
            mem.add(TEXTS[:3], embeddings=emb)
        assert len(mem) == 0
        monkeypatch.undo()
        monkeypatch.setattr(parallel, "WORKERS", 2)
        assert mem.add(TEXTS[:3], embeddings=emb) == [1, 2, 3]
        assert mem.get(2).text == TEXTS[1]


def test_term_index_entries_made_for_a_whole_batch_are_each_passages_bytes():
    # format 2 (termcode.pack_many): SciFact passages and edge cases, as one entry each (termcode.pack)
    texts = TEXTS + ["2020 1998 12.5%", "vortex " * 300 + "1998 " * 3 + "x" * 17, "zebra", "1/2 " * 20 + "9" * 16]
    toks = [hints.tokenize(t) for t in texts] + [[]]
    lexicon = hints.Lexicon()
    lexicon.observe([{f"pad{i}" for i in range(20000)}])  # ids past 2**14
    lexicon.observe([hints.terms_of(t) for t in toks])
    together = termindex.encode_all(toks, lexicon)
    assert together == [termindex.encode(t, lexicon, 2) for t in toks]
    assert together[-1] == termindex.encode([], lexicon, 2) and termindex.encode_all([], lexicon) == []
    rng = np.random.default_rng(3)  # ids of every size (exp-Golomb orders up to 15), counts past 255, extra lengths
    rows = []
    for _ in range(300):
        n = int(rng.integers(0, 30))
        ids = np.sort(rng.choice(2 ** int(rng.integers(5, 50)), size=n, replace=False)).astype(np.int64)
        counts = rng.integers(1, 400, size=n)
        rows.append((int(np.minimum(counts, 255).sum() + rng.integers(0, 3)), ids, counts,
                     {"12": int(rng.integers(1, 300)), "3.5%": 2} if rng.random() < 0.3 else None))
    many = termcode.pack_many([r[0] for r in rows], np.array([len(r[1]) for r in rows], np.int64),
                              np.concatenate([r[1] for r in rows]), np.concatenate([r[2] for r in rows]),
                              [r[3] for r in rows])
    assert many == [termcode.pack(r[0], r[1].tolist(), r[2].tolist(), r[3] or {}) for r in rows]
