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
from hashmem.memory.backends.base import Backend
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
    assert isinstance(mem.backend, LocalBackend) and mem.backend.local
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
    for name in ("hamming_topk", "codes_of", "fetch_present_qvecs", "fetch", "stale"):
        real = getattr(backend, name)

        def spy(*a, _real=real, _name=name, **kw):
            seen.append(_name)
            return _real(*a, **kw)

        setattr(backend, name, spy)
    hits = mem.search("Marie Curie", k=2, candidates=2)
    assert hits and {"stale", "hamming_topk", "codes_of", "fetch_present_qvecs", "fetch"} <= set(seen)
    assert np.isfinite([h.score for h in hits]).all()
