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
