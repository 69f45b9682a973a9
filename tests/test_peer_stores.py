"""benchmarks/peer_stores.py: every store that imports here maps positions to texts and finds a passage by its
own vector (the harness of benchmarks/peers.py; a store whose library is missing is skipped, as there)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import peer_stores  # noqa: E402

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
