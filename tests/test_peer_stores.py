"""benchmarks/peer_stores.py: every store that imports here maps positions to texts and finds a passage by its
own vector (the harness of benchmarks/peers.py; a store whose library is missing is skipped, as there)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

# loaded from its file, not by putting benchmarks/ on sys.path: benchmarks/milvus.py would shadow
# the `milvus` package the Milvus tests start their server from
_SPEC = importlib.util.spec_from_file_location("peer_stores", Path(__file__).resolve().parents[1] / "benchmarks"
                                               / "peer_stores.py")
peer_stores = importlib.util.module_from_spec(_SPEC)
sys.modules["peer_stores"] = peer_stores  # its dataclasses look their module up
_SPEC.loader.exec_module(peer_stores)

STORES = {s.name: s for s in peer_stores.stores()}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STORES))
def test_store_finds_each_passage_by_its_vector_and_fetches_its_text(name, tmp_path):
    store = STORES[name]
    if why := store.missing():
        pytest.skip(why)
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((60, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    texts = [f"passage {i} about {w}" for i, w in enumerate(rng.choice(["tides", "ferns", "quarks"], 60))]
    store.warm()
    store.build(tmp_path, texts, emb)
    store.open(tmp_path)
    try:
        for mode, search in store.modes().items():
            for i in (0, 17, 59):
                assert search(emb[i], texts[i], 5)[0] == i, (mode, i)
        got = store.fetch([59, 3, 17])
        assert got == ([None] * 3 if name == "hashmem hints" else [texts[59], texts[3], texts[17]])
    finally:
        store.close()
