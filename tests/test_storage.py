"""Faults at the file level: corrupted, foreign, read-only, missing paths."""

import io
import os
import sqlite3
import time

import numpy as np
import pytest

from hashmem.memory import Memory, StoreCorruptError, StoreError


def test_missing_directory(tmp_path):
    with pytest.raises(StoreError, match="does not exist; create it first"):
        Memory(tmp_path / "nope" / "s.db")


def test_missing_store_when_not_creating(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Memory(tmp_path / "s.db", create=False)


def test_directory_as_store(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        Memory(tmp_path)


def test_garbage_file_is_reported_as_corrupt(tmp_path):
    p = tmp_path / "s.db"
    p.write_bytes(os.urandom(8192))
    with pytest.raises(StoreCorruptError, match="not a hashmem store or is corrupted"):
        Memory(p)
    assert p.stat().st_size == 8192  # left as it was


def test_foreign_sqlite_file(tmp_path):
    p = tmp_path / "other.db"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorruptError, match="not a hashmem store"):
        Memory(p)


def test_truncated_store(mem, store_path):
    mem.close()
    data = store_path.read_bytes()
    store_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreCorruptError):
        Memory(store_path)


def test_overwritten_page_is_caught(mem, store_path):
    mem.close()
    data = bytearray(store_path.read_bytes())
    page = int.from_bytes(data[16:18], "big")  # the file's page size (16 KiB since format 2)
    data[2 * page : 3 * page] = os.urandom(page)  # trash an interior page
    store_path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError):
        m = Memory(store_path)
        m.search("Boeing", k=3)
        m.storage.check(bits=m.config.bits, dim=m.config.dim, generation=m.hasher.generation, full=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write read-only files")
def test_read_only_store_can_be_searched_not_written(mem, store_path):
    mem.close()
    store_path.chmod(0o444)
    try:
        with Memory(store_path) as m:
            assert m.search("Boeing", k=1)
            with pytest.raises(StoreError, match="read-only"):
                m.add(["new text"])
    finally:
        store_path.chmod(0o644)


def test_read_only_store_refuses_writes(mem, store_path, monkeypatch):
    """As root, os.access says writable; simulate a read-only mount the way the store sees it."""
    mem.close()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real(p, mode))
    with Memory(store_path) as m:
        assert m.storage.readonly
        assert m.search("Boeing", k=1)[0].id == 1
        with pytest.raises(StoreError, match="read-only"):
            m.add(["new text"])
        with pytest.raises(StoreError, match="read-only"):
            m.delete([1])
    monkeypatch.undo()
    with Memory(store_path) as m:
        assert len(m) == 8


def test_newer_format_version_is_refused(mem, store_path):
    mem.close()
    conn = sqlite3.connect(store_path)
    conn.execute("UPDATE meta SET value='99' WHERE key='format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="format version 99, newer than"):
        Memory(store_path)


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_only_open_changes_nothing_and_needs_no_wal_files(mem, store_path, monkeypatch):
    """On a read-only filesystem os.access(W_OK) is False even for root (EROFS): the store is opened
    immutable. This proves that path writes nothing and needs no -wal/-shm; it cannot mount a real
    read-only filesystem."""
    mem.close()
    for suffix in ("-wal", "-shm"):
        assert not os.path.exists(f"{store_path}{suffix}")
    before = _sha(store_path)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real(p, mode))
    with Memory(store_path, readonly=True) as m:
        assert "immutable=1" in m.storage.file.uri()
        assert m.search("Boeing", k=1)[0].id == 1
        assert m.get(2).metadata["n"] == 1
        with pytest.raises(StoreError, match="read-only"):
            m.delete([1])
    for suffix in ("-wal", "-shm"):
        assert not os.path.exists(f"{store_path}{suffix}")
    assert _sha(store_path) == before


def test_read_only_open_among_writers_sees_their_commits(mem, store_path):
    before = _sha(store_path)
    with Memory(store_path, readonly=True) as reader:
        assert "mode=ro" in reader.storage.file.uri()
        n = len(reader)
        mem.add(["The lighthouse at Alexandria was one of the seven wonders."])
        assert len(reader) == n + 1
        assert reader.search("Pharos lighthouse wonder", k=1)[0].id == n + 1
    mem.close()
    assert _sha(store_path) != before  # the writer's add, not the reader's doing
    assert Memory(store_path, readonly=True).storage.readonly


def test_foreign_sqlite_file_is_not_switched_to_wal(tmp_path):
    p = tmp_path / "app.db"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    before = _sha(p)
    with pytest.raises(StoreCorruptError, match="not a hashmem store"):
        Memory(p)
    assert _sha(p) == before
    conn = sqlite3.connect(p)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_store_file_deleted_under_an_open_handle_fails_loudly(mem, store_path, how):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{store_path}{suffix}"):
            os.unlink(f"{store_path}{suffix}")
    if how == "replaced":
        store_path.write_bytes(b"")
    with pytest.raises(StoreError, match=f"was {how}"):
        mem.add(["A passage that would vanish with the unlinked file."])
    with pytest.raises(StoreError, match=f"was {how}"):
        mem.delete([1])


def test_disk_full_reports_the_real_cause_and_keeps_the_store(mem, store_path):
    """SQLITE_FULL simulated with max_page_count (a tiny filesystem needs a mount, which tests cannot do)."""
    n = len(mem)
    pages = mem.storage.conn.execute("PRAGMA page_count").fetchone()[0]
    mem.storage.conn.execute(f"PRAGMA max_page_count = {pages}")
    texts = [f"Filler passage number {i} about harbours, lanterns and copper kettles {i * 7}." for i in range(60)]
    with pytest.raises(StoreError, match="database or disk is full") as e:
        mem.add(texts)
    assert "\n" not in str(e.value) and "no transaction is active" not in str(e.value)
    assert len(mem) == n
    mem.storage.conn.execute("PRAGMA max_page_count = 1073741823")
    assert len(mem.add(texts[:2])) == 2
    mem.storage.check(bits=mem.config.bits, dim=mem.config.dim, generation=mem.hasher.generation, full=True)


def test_durable_syncs_every_commit(mem, store_path, monkeypatch):
    """synchronous: NORMAL (1) by default, FULL (2) with durable=True / `hashmem --durable`."""
    import sys

    from click.testing import CliRunner

    from hashmem.cli.main import cli

    store_cmds = sys.modules["hashmem.cli.store_cmds"]

    assert mem.storage.conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    mem.close()
    with Memory(store_path, durable=True) as m:
        assert m.storage.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        m.add(["A durable passage about granite quarries."])
    seen = []
    real = store_cmds.open_memory

    def spy(ctx, **kw):
        m = real(ctx, **kw)
        seen.append(m.storage.conn.execute("PRAGMA synchronous").fetchone()[0])
        return m

    monkeypatch.setattr(store_cmds, "open_memory", spy)
    r = CliRunner().invoke(cli, ["--store", str(store_path), "--durable", "delete", "1"], catch_exceptions=False)
    assert r.exit_code == 0 and seen == [2], r.output
# -- format 2: compact layout, size accounting; format 1 stores still open ---------------------


def test_file_parts_add_up_to_the_file(mem, store_path):
    mem.close()
    with Memory(store_path) as m:
        s = m.stats()
        parts = s.file_parts
        assert {"code", "qvec", "hints", "metadata", "lexicon", "settings", "records_other"} <= set(parts)
        assert parts["code"] == 8 * 32 and parts["qvec"] == 8 * 384
        assert abs(sum(parts.values()) - s.file_bytes) <= 0.02 * s.file_bytes
        assert all(v >= 0 for v in parts.values())


def test_new_store_has_16k_pages_and_one_compressed_copy_of_each_term(mem):
    conn = mem.storage.conn
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 16384
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "lexicon" in tables and "terms" not in tables and not any("terms" in t for t in tables)
    lex = mem.storage.load_lexicon()
    assert len(lex.terms) == len(set(lex.terms)) > 20
    assert mem.storage.terms([0, len(lex.terms) - 1]) == {0: lex.terms[0], len(lex.terms) - 1: lex.terms[-1]}


def test_lexicon_spanning_blocks_survives_reopen(store_path, passages, monkeypatch):
    from hashmem.memory.backends.local import lexicon

    monkeypatch.setattr(lexicon, "LEXICON_BLOCK", 5)  # many blocks, full and partial
    with Memory(store_path) as m:
        m.add(passages[:4])
        m.add(passages[4:])
        before = m.lexicon
    monkeypatch.setattr(lexicon, "LEXICON_BLOCK", 40)  # a growing block with a tail, sealed when it outgrows 25
    monkeypatch.setattr(lexicon, "LEXICON_TAIL", 25)
    store_path.unlink()
    with Memory(store_path) as m:
        seen = set()
        for p in passages:
            m.add([p])
            rows = m.storage.conn.execute("SELECT block, tail IS NOT NULL FROM lexicon").fetchall()
            seen |= {t for _, t in rows}
            assert not any(t for b, t in rows if b < len(rows) - 1)  # full blocks have no tail
            assert m.storage.load_lexicon().terms == m.lexicon.terms
        assert seen == {0, 1} and len(rows) > 1
    store_path.unlink()
    monkeypatch.setattr(lexicon, "LEXICON_BLOCK", 5)
    with Memory(store_path) as m:
        m.add(passages[:4])
        m.add(passages[4:])
        before = m.lexicon
        hits = m.search("Nobel Prize chemistry", k=1)
    with Memory(store_path) as m:
        after = m.storage.load_lexicon()
        assert after.terms == before.terms and after.df == before.df and after.n_docs == 8
        assert m.storage.terms(range(len(after.terms))) == dict(enumerate(after.terms))
        assert m.search("Nobel Prize chemistry", k=1)[0].hints == hits[0].hints
        blocks = m.storage.conn.execute("SELECT count(*) FROM lexicon").fetchone()[0]
        assert blocks == -(-len(after.terms) // 5)


def test_repeated_metadata_is_stored_once(store_path, passages):
    source = "/a/rather/long/path/to/the/notes/file-that-every-passage-repeats.txt"
    with Memory(store_path) as m:
        ids = m.add(passages, metadata=[{"source": source, "n": i, "tag": f"t{i}"} for i in range(8)])
        rows = m.storage.conn.execute("SELECT metadata FROM records").fetchall()
        assert all(source not in r[0] for r in rows)  # not in any record
        assert m.storage.conn.execute("SELECT count(*) FROM meta_sets").fetchone()[0] == 1
        assert m.get(ids[3]).metadata == {"n": 3, "source": source, "tag": "t3"}
        m.add(passages[:2], metadata={"source": source})  # a later batch reuses the set
        assert m.storage.conn.execute("SELECT count(*) FROM meta_sets").fetchone()[0] == 1
        assert len(m.search("flour egg", k=20, where={"source": source})) == 10
        six = m.search("flour egg", k=20, where={"source": source, "tag": "t6"})
        assert [h.id for h in six] == [ids[6]]
        assert six[0].metadata == {"n": 6, "source": source, "tag": "t6"}  # a hit's metadata holds the set's keys
        assert m.search("flour egg", k=20, where={"tag": None}) == []  # a missing key is not an explicit null
        nulls = m.add(passages[2:4], metadata={"source": source, "tag": None})  # source interned, null kept
        assert sorted(h.id for h in m.search("flour egg", k=20, where={"tag": None})) == nulls
        assert len(m.search("flour egg", k=20, where={"source": source})) == 12
        per = m.stats().bytes_per_passage["metadata"]
        assert per < len(source) / 2  # the path counts once, not per passage


def _downgrade_to_format_2(path):
    """Rewrite a store in the format 2 layout, as hashmem wrote it before format 3: creation time and code
    generation per record, AUTOINCREMENT ids, a ``namespaces`` table and index, every table from the start,
    8192-term lexicon blocks of ``\\n``-joined terms and uint32 frequencies, an uncompressed hasher."""
    import json

    import numpy as np
    import zstandard

    from hashmem.memory.backends.local.storage import Storage
    from hashmem.memory.hashing import Hasher

    st = Storage(path, create=False)
    assert st.batch_times  # a format 3 store
    lex = st.load_lexicon()
    meta = dict(st.conn.execute("SELECT key, value FROM meta"))
    names = {int(v): k[len("namespace:"):] for k, v in meta.items() if k.startswith("namespace:")}
    gen = int(meta.pop("code_generation", 0))
    last = int(meta.pop("last_id", 0))
    for k in [k for k in meta if k.startswith("namespace:")]:
        del meta[k]
    meta["hasher"] = Hasher.from_bytes(meta["hasher"]).to_bytes()
    meta["format_version"] = "2"
    config = json.loads(meta["config"])
    config["format_version"] = 2
    meta["config"] = json.dumps(config)
    c = st.conn
    c.execute("BEGIN")
    c.execute("CREATE TABLE meta2 (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    c.executemany("INSERT INTO meta2 VALUES (?, ?)", meta.items())
    c.execute("""CREATE TABLE records2 (id INTEGER PRIMARY KEY AUTOINCREMENT, namespace INTEGER NOT NULL,
        created REAL NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', meta_set INTEGER NOT NULL DEFAULT 0,
        code BLOB NOT NULL, qvec BLOB NOT NULL, hints BLOB NOT NULL, gen INTEGER NOT NULL)""")
    c.execute("INSERT INTO records2 SELECT r.id, r.namespace, (SELECT b.created FROM batches b WHERE b.first_id <= r.id "
              "ORDER BY b.first_id DESC LIMIT 1), r.metadata, r.meta_set, r.code, r.qvec, r.hints, ? FROM records r",
              (gen,))
    c.execute("CREATE TABLE namespaces (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    c.executemany("INSERT INTO namespaces VALUES (?, ?)", names.items())
    c.execute("CREATE TABLE lexicon2 (block INTEGER PRIMARY KEY, terms BLOB NOT NULL, df BLOB NOT NULL)")
    for b, lo in enumerate(range(0, len(lex.terms), 8192)):
        c.execute("INSERT INTO lexicon2 VALUES (?, ?, ?)", (
            b, zstandard.compress("\n".join(lex.terms[lo : lo + 8192]).encode("utf-8"), 3),
            zstandard.compress(np.asarray(lex.df[lo : lo + 8192], dtype="<u4").tobytes(), 3)))
    for t in ("meta", "records", "lexicon", "batches"):
        c.execute(f"DROP TABLE {t}")
    c.execute("DROP INDEX IF EXISTS records_namespace")
    for t in ("meta", "records", "lexicon"):
        c.execute(f"ALTER TABLE {t}2 RENAME TO {t}")
    c.execute("CREATE INDEX records_namespace ON records(namespace, id)")
    c.execute("DELETE FROM sqlite_sequence WHERE name = 'records'")
    c.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('records', ?)", (last,))
    for stmt in ("meta_sets (id INTEGER PRIMARY KEY, json TEXT NOT NULL)", "texts (id INTEGER PRIMARY KEY, body BLOB NOT NULL)",
                 "ivf_lists (id INTEGER PRIMARY KEY, list INTEGER NOT NULL)"):
        c.execute(f"CREATE TABLE IF NOT EXISTS {stmt}")
    c.execute("COMMIT")
    st.close()


def _downgrade_to_format_1(path):
    """Rewrite a store in the format 1 layout, as hashmem 0.1 wrote it (terms table, no meta_sets)."""
    import io
    import json

    import numpy as np

    from hashmem.memory.backends.local.storage import Storage
    from hashmem.memory.hashing import Hasher

    st = Storage(path, create=False)
    lex = st.load_lexicon()
    sets = dict(st.conn.execute("SELECT id, json FROM meta_sets"))
    rows = st.conn.execute("SELECT id, metadata, meta_set FROM records").fetchall()
    h = Hasher.from_bytes(st.get_meta("hasher"))
    buf = io.BytesIO()
    np.savez(buf, method=np.array(h.method), bits=np.array(h.bits), mean=h.mean, projection=h.projection,
             generation=np.array(h.generation), fitted_on=np.array(h.fitted_on))
    config = json.loads(st.get_meta("config"))
    config["format_version"] = 1
    c = st.conn
    c.execute("BEGIN")
    c.execute("CREATE TABLE terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE, df INTEGER NOT NULL)")
    c.executemany("INSERT INTO terms VALUES (?, ?, ?)", [(i, t, lex.df[i]) for i, t in enumerate(lex.terms)])
    for i, meta, s in rows:
        merged = {**json.loads(sets.get(s, "{}")), **json.loads(meta)}
        c.execute("UPDATE records SET metadata = ? WHERE id = ?", (json.dumps(merged, sort_keys=True), i))
    c.execute("""CREATE TABLE records1 (id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL,
        created REAL NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', code BLOB NOT NULL, qvec BLOB NOT NULL,
        hints BLOB NOT NULL, gen INTEGER NOT NULL)""")
    c.execute("INSERT INTO records1 SELECT r.id, n.name, r.created, r.metadata, r.code, r.qvec, r.hints, r.gen "
              "FROM records r JOIN namespaces n ON n.id = r.namespace")
    for t in ("records", "lexicon", "meta_sets", "namespaces"):
        c.execute(f"DROP TABLE {t}")
    c.execute("ALTER TABLE records1 RENAME TO records")
    c.execute("CREATE INDEX records_namespace ON records(namespace, id)")
    c.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    c.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    c.execute("UPDATE meta SET value = ? WHERE key = 'hasher'", (buf.getvalue(),))
    c.execute("COMMIT")
    st.close()


def test_format_2_store_opens_searches_and_grows(mem, store_path, passages):
    before = {h.id: (h.hints, h.metadata, mem.get(h.id).created) for h in mem.search("Nobel Prize chemistry", k=3)}
    hits = [h.id for h in mem.search("Nobel Prize chemistry", k=3)]
    mem.close()
    _downgrade_to_format_2(store_path)
    with Memory(store_path) as m:
        st = m.storage
        assert not st.batch_times and st.lexicon_blocks and st.meta_sets and st.namespace_ids
        assert [h.id for h in m.search("Nobel Prize chemistry", k=3)] == hits
        assert {h.id: (h.hints, h.metadata, m.get(h.id).created) for h in m.search("Nobel Prize chemistry", k=3)} == before
        assert [h.id for h in m.search("flour", k=8, where={"kind": "even"})] == [
            h.id for h in m.search("flour", k=8) if h.metadata["kind"] == "even"]
        t0 = time.time()
        new = m.add(["Zanzibar exports cloves and nutmeg to Oman."], metadata={"kind": "spice"}, namespace="trade")
        assert new == [9]  # after the last id, from sqlite_sequence
        s = m.stats()
        assert abs(sum(s.file_parts.values()) - s.file_bytes) <= 0.02 * s.file_bytes
    with Memory(store_path) as m:
        assert m.storage.get_meta("format_version") == "2"
        assert m.storage.get_meta("code_generation") is None  # the format 2 layout is kept
        hit = m.search("cloves from Zanzibar", k=1, namespace="trade")[0]
        assert hit.id == new[0] and "Oman" in hit.hints and hit.metadata == {"kind": "spice"}
        assert m.get(new[0]).created >= t0 - 1
        assert m.namespaces() == {"default": 8, "trade": 1}
        m.refit()  # a format 2 store keeps the archive format 2 versions read
        with np.load(io.BytesIO(m.storage.get_meta("hasher"))) as z:
            assert "projection" in z.files and "projection_planes" not in z.files
        assert m.search("cloves from Zanzibar", k=1, namespace="trade")[0].id == new[0]
        lex = m.storage.load_lexicon()
        assert {"zanzibar", "Oman"} <= set(lex.ids) and len(lex.terms) == len(set(lex.terms))
        assert m.storage.conn.execute("SELECT count(*) FROM records WHERE typeof(created) = 'real'").fetchone()[0] == 9
    conn = sqlite3.connect(store_path)
    conn.execute("UPDATE records SET gen = gen + 1 WHERE id = 3")  # format 2 keeps a generation per record
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorruptError, match="another hashing fit"):
        Memory(store_path)


def test_format_1_store_opens_searches_and_grows(mem, store_path, passages):
    expected = [(h.id, h.hints, h.metadata) for h in mem.search("Nobel Prize chemistry", k=3)]
    mem.close()
    _downgrade_to_format_2(store_path)
    _downgrade_to_format_1(store_path)
    with Memory(store_path) as m:
        assert not (m.storage.lexicon_blocks or m.storage.meta_sets or m.storage.namespace_ids)
        assert [(h.id, h.hints, h.metadata) for h in m.search("Nobel Prize chemistry", k=3)] == expected
        assert [h.id for h in m.search("flour", k=8, where={"kind": "even"})] == [
            h.id for h in m.search("flour", k=8) if h.metadata["kind"] == "even"]
        new = m.add(["Zanzibar exports cloves and nutmeg to Oman."], metadata={"kind": "spice"})
        s = m.stats()
        assert abs(sum(s.file_parts.values()) - s.file_bytes) <= 0.02 * s.file_bytes
    with Memory(store_path) as m:
        assert m.storage.get_meta("format_version") == "1"
        hit = m.search("cloves from Zanzibar", k=1)[0]
        assert hit.id == new[0] and "Oman" in hit.hints and hit.metadata == {"kind": "spice"}
        assert {"zanzibar", "Oman"} <= set(m.storage.load_lexicon().ids)


def test_namespaces_are_stored_as_small_ids(store_path, passages):
    with Memory(store_path) as m:
        a = m.add(passages[:3], namespace="user:ana")
        b = m.add(passages[3:], namespace="user:ben")
        kinds = {r[0] for r in m.storage.conn.execute("SELECT typeof(namespace) FROM records")}
        assert kinds == {"integer"}
        assert m.namespaces() == {"user:ana": 3, "user:ben": 5}
        assert {h.namespace for h in m.search("Boeing", k=8, namespace="user:ana")} == {"user:ana"}
        assert m.storage.count("user:ben") == 5 and m.storage.count("nobody") == 0
        assert m.search("Boeing", k=3, namespace="nobody") == []
        assert m.delete([a[0], b[0]]) == 2
    with Memory(store_path) as m:
        assert m.namespaces() == {"user:ana": 2, "user:ben": 4}
        assert sorted(m.ids("user:ben")) == b[1:]


def test_a_second_writer_never_overwrites_new_lexicon_terms(store_path, passages):
    with Memory(store_path) as a, Memory(store_path) as b:
        a.add(passages[:2])
        b.add(passages[2:4])  # b's lexicon was loaded after a's batch: fine, it grows it
        # a's lexicon is stale: it catches up inside the write lock before rewriting a block
        assert a.add(["Quetzalcoatl feathers were traded in Tenochtitlan."])
        assert a.storage.count() == 5
    with Memory(store_path) as m:
        lex = m.storage.load_lexicon()
        assert len(lex.terms) == len(set(lex.terms)) and {"Tenochtitlan", "Boston", "Boeing"} <= set(lex.ids)
        assert "Tenochtitlan" in m.search("feathers traded in Tenochtitlan", k=1)[0].hints


def test_format_3_keeps_times_per_batch_and_makes_tables_on_need(store_path, passages):
    with Memory(store_path) as m:
        st = m.storage
        t0 = time.time()
        a = m.add(passages[:3])
        time.sleep(0.02)
        b = m.add(passages[3:6])
        tables = {r[0] for r in st.conn.execute("SELECT name FROM sqlite_master")}
        assert {"meta", "records", "batches", "lexicon"} <= tables
        assert not tables & {"namespaces", "texts", "ivf_lists", "meta_sets", "records_namespace", "sqlite_sequence"}
        assert not {"created", "gen"} & {r[1] for r in st.conn.execute("PRAGMA table_info(records)")}
        ca, cb = {m.get(i).created for i in a}, {m.get(i).created for i in b}
        assert len(ca) == len(cb) == 1 and t0 <= min(ca) < min(cb) <= time.time()
        assert st.conn.execute("SELECT count(*) FROM batches").fetchone()[0] == 2
        import zstandard

        from hashmem.memory.backends.local.lexicon_codec import front_encode

        blob, tail = st.conn.execute("SELECT terms, tail FROM lexicon").fetchone()  # the second add: a tail
        lex = st.load_lexicon()
        assert zstandard.decompress(blob) == front_encode(lex.terms[: len(lex.terms) - len(st.lexicon.front_cache[1])])
        assert zstandard.decompress(tail) == front_encode(st.lexicon.front_cache[1]) and st.lexicon.front_cache[1] == lex.terms[-len(
            st.lexicon.front_cache[1]):]
        assert st.count() == 6 and st.count("default") == 6 and st.count("nobody") == 0
        assert st.live_ids("default", b[1]).tolist() == a + b[:2] and len(st.live_ids("nobody", b[-1])) == 0
        assert m.namespaces() == {"default": 6}
        c = m.add(passages[6:], namespace="other")  # a second namespace brings the index
        plan = " ".join(r[-1] for r in st.conn.execute("EXPLAIN QUERY PLAN SELECT id FROM records WHERE namespace = 2"))
        assert "records_namespace" in plan
        assert m.namespaces() == {"default": 6, "other": 2} and st.count("other") == 2 and st.count() == 8
        assert m.delete([b[-1], c[-1]]) == 2
        assert st.count() == 6 and st.count("other") == 1 and sorted(m.ids("default")) == a + b[:-1]
        assert st.live_ids("default", c[-1]).tolist() == a + b[:-1] and st.live_ids("other", c[-1]).tolist() == c[:1]
        m.refit()
        assert st.get_meta("code_generation") == str(m.hasher.generation)
        with np.load(io.BytesIO(st.get_meta("hasher"))) as z:  # compressed, float16 byte planes
            assert "projection_planes" in z.files and "projection" not in z.files
        assert {int(g) for *_, gens in st.iter_codes() for g in gens} == {m.hasher.generation}
    with Memory(store_path, check=True) as m:
        new = m.add(["Zanzibar exports cloves and nutmeg to Oman."])
        assert new == [c[-1] + 1]  # ids are never reused, not even the last one deleted
        assert m.get(a[0]).created == min(ca) and m.get(new[0]).created >= min(cb)
        assert m.stats().records == 7 and m.search("cloves Zanzibar", k=1)[0].id == new[0]


def test_front_coded_lexicon_blocks_round_trip():
    from hashmem.memory.backends.local.lexicon_codec import front_decode, front_encode

    long = "x" * 300
    # an empty suffix, a shared prefix cut inside a UTF-8 character, one longer than 255 bytes,
    # and one of exactly 10 bytes (the prefix byte is then a newline)
    terms = ["", "a", "ab", "abc", "ab", "étude", "étage", "été", long, long + "y", "x" * 10 + " ",
             "Zürich", "Zürichsee", "日本", "日本語"]
    assert front_decode(front_encode(terms)) == terms
    assert front_decode(front_encode([])) == []
    assert front_encode(["international", "internationally"]) == b"\x02\0\0\0\x00\x0dinternational\nly"
    for bad in (bytes([1, 0, 0, 0, 5]) + b"abc",  # shares 5 bytes with nothing
                bytes([2, 0, 0, 0, 0, 0]) + b"abc",  # two terms, one rest
                b"\0\0"):  # no count
        with pytest.raises(ValueError):
            front_decode(bad)


def test_frequencies_pack_in_one_byte_each_and_large_ones_after():
    import numpy as np

    from hashmem.memory.backends.local.lexicon_codec import pack_df, unpack_df

    df = [1, 2, 254, 255, 256, 70_000, 1, 2**32 - 1, 0]
    packed = pack_df(df)
    assert len(packed) == 4 + len(df) + 8 * 4  # four of 255 or more
    assert unpack_df(packed).tolist() == df and unpack_df(pack_df([])).tolist() == []
    assert len(pack_df(np.ones(1000, int).tolist())) == 4 + 1000
    for bad in (packed[:-1], packed[:4 + 3] + b"\x07" + packed[8:], b"\x01"):
        with pytest.raises(ValueError):
            unpack_df(bad)


@pytest.mark.parametrize("fmt", [3, 2, 1])
def test_narrow_column_reads_equal_whole_rows_in_every_format(store_path, passages, fmt):
    """``fetch_columns`` (what search reads: a few columns) gives what ``fetch`` (whole rows) gives."""
    from hashmem.memory.backends.base import RECORD

    source = "/notes/shared-by-every-passage.txt"
    with Memory(store_path) as m:
        ids = m.add(passages, metadata=[{"source": source, "n": i} for i in range(len(passages))])
        m.add(passages[:2], namespace="other", metadata={"n": 99})
    if fmt <= 2:
        _downgrade_to_format_2(store_path)
    if fmt == 1:
        _downgrade_to_format_1(store_path)
    with Memory(store_path) as m:
        asked = [ids[3], 10**15, ids[0], ids[-1] + 1, ids[-1] + 2, -5]
        rows = m.storage.fetch(asked)
        for fields in (RECORD, ("namespace", "metadata", "hints"), ("qvec", "hints"), ("created", "gen", "code")):
            present, columns = m.storage.fetch_columns(asked, fields)
            assert present == [i for i in asked if i in rows] and len(present) == 4
            for f in fields:
                assert columns[f] == [getattr(rows[i], f) for i in present], (fmt, f)
        assert m.storage.fetch_columns(asked, ("metadata",))[1]["metadata"][0] == {"n": 3, "source": source}
        with pytest.raises(ValueError, match="no record field 'text'"):
            m.storage.fetch_columns(asked, ("text",))
