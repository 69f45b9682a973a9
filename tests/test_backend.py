"""The storage-backend interface over the local backend (SQLite file + in-RAM Hamming index).

The same checks run against a real Milvus server in ``test_milvus_backend.py``
(``backend_contract``); here also what only the local backend promises.
"""

from __future__ import annotations

import backend_contract as contract
import numpy as np
import pytest

from hashmem.memory import Memory
from hashmem.memory.backends import is_milvus_uri, open_backend
from hashmem.memory.backends.base import AfterCommitUpkeep, ApiKeys, Backend, FileStatistics
from hashmem.memory.backends.local.backend import LocalBackend


@pytest.fixture
def open_mem(tmp_path):
    opened = []

    def open_(**kw):
        m = Memory(tmp_path / "store.db", **kw)
        opened.append(m)
        return m

    yield open_
    for m in opened:
        m.close()


class TestLocalBackend(contract.BackendContract):
    """The backend contract (tests/backend_contract.py) on the local backend (SQLite + in-RAM index)."""


def test_local_is_the_default_and_keeps_its_file_and_index(open_mem, tmp_path):
    mem = open_mem()
    mem.add(contract.PASSAGES)
    assert isinstance(mem.backend, LocalBackend)
    assert all(isinstance(mem.backend, p) for p in (AfterCommitUpkeep, ApiKeys, FileStatistics))
    assert mem.storage is mem.backend.storage and mem.index is mem.backend.index
    assert mem.path == tmp_path / "store.db" and mem.stats().file_bytes > 0


def test_failed_first_batch_raises_the_error_as_it_is(open_mem, monkeypatch):
    """Nothing of the add stored: the local store's own error, not AddIncompleteError."""
    from hashmem.memory import AddIncompleteError, StoreError

    mem = open_mem()

    def fail(self, txn, **kw):
        raise StoreError("disk is full; nothing from this batch was stored")

    monkeypatch.setattr(LocalBackend, "insert", fail)
    with pytest.raises(StoreError, match="disk is full") as err:
        mem.add(contract.PASSAGES)
    assert not isinstance(err.value, AddIncompleteError)
    assert len(mem) == 0


@pytest.mark.parametrize("location, remote", [
    ("milvus://127.0.0.1:19530/notes", True),
    ("MILVUS://h/c", True),
    ("milvus+tls://h:443/c", True),
    ("notes.db", False),
    ("./milvus:/x", False),
])
def test_is_milvus_uri(location, remote):
    assert is_milvus_uri(location) is remote


def test_backend_is_abstract():
    with pytest.raises(TypeError):
        Backend()
    assert isinstance(open_backend.__doc__, str)


def test_memory_runs_the_search_stages_through_the_interface(open_mem):
    """Memory's three stages call only the interface: a wrapper that records calls sees them all."""
    mem = open_mem()
    mem.add(contract.PASSAGES)
    seen = []
    backend = mem.backend
    for name in ("candidates", "rows", "stale"):
        real = getattr(backend, name)

        def spy(*a, _real=real, _name=name, **kw):
            seen.append(_name)
            return _real(*a, **kw)

        setattr(backend, name, spy)
    hits = mem.search("Marie Curie", k=2, candidates=2)
    assert hits and {"stale", "candidates", "rows"} <= set(seen)
    assert np.isfinite([h.score for h in hits]).all()


def test_the_interface_is_narrow_and_shared_state_is_not_the_backends():
    """About twenty methods a backend must have; the optional protocols are separate; a backend
    follows the shared state, never writes a handle's fields."""
    import inspect

    abstract = sorted(Backend.__abstractmethods__)
    assert len(abstract) <= 22, abstract
    assert {"rows", "scan", "select", "update", "changes", "candidates", "setting", "put_setting"} <= set(abstract)
    public = [n for n, _ in inspect.getmembers(Backend, callable) if not n.startswith("_")]
    assert len(public) <= 32, public
    for gone in ("fetch", "fetch_qvecs", "fetch_present_qvecs", "fetch_texts", "codes_of", "sync", "hamming_topk"):
        assert not hasattr(Backend, gone)


def test_a_stale_handle_follows_the_change_feed(open_mem):
    """Another handle's refit reaches this one through ``changes``: new hasher, reloaded index, same hits."""
    mem = open_mem(method="sign")
    ids = mem.add(contract.PASSAGES)
    other = open_mem()
    versions = dict(mem.state.versions)
    assert mem.backend.changes(versions) == {}  # nothing moved
    other.refit()
    moved = mem.backend.changes(versions)
    assert {"records", "hasher"} <= set(moved)
    hits = mem.search("Who won the Nobel Prize twice?", k=1)
    assert mem.hasher.generation == other.hasher.generation and mem.state.hasher_raw == other.state.hasher_raw
    assert hits[0].id == ids[5]


def test_a_handle_nobody_else_wrote_to_is_not_stale(open_mem):
    """``stale`` is the cheap look before each search: after a catch-up, and after this handle's own
    writes, it says no (else every search would take the write lock to catch up with nothing)."""
    mem = open_mem()
    mem.add(contract.PASSAGES)
    mem.search("Marie Curie", k=1)
    assert not mem.backend.stale()
    other = open_mem()
    other.add(["The library in Boston opened its doors in 2001."])
    assert mem.backend.stale()
    mem.search("library", k=1)
    assert not mem.backend.stale()
