"""Faults at the file level: corrupted, foreign, read-only, missing paths."""

import os
import sqlite3

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
    page = 4096
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
        assert "immutable=1" in m.storage._uri()
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
        assert "mode=ro" in reader.storage._uri()
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

    from hashmem.cli.main import cli  # imports store_cmds (importing that first would be circular)

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
