"""Shared fixtures. The real embedding model is used (it ships offline in a package)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

PASSAGES = [
    "The Boeing 747 flew from London to New York on 12 March 1998 carrying 416 passengers.",
    "Aerodynamic heating of slender bodies at hypersonic speed was measured in a wind tunnel.",
    "Alice was beginning to get very tired of sitting by her sister on the bank.",
    "The committee approved a budget of 3.5 million dollars for the new library in Boston.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.",
    "The recipe needs two cups of flour, one egg and a pinch of salt.",
    "Python's garbage collector frees objects that are no longer referenced.",
]


@pytest.fixture
def passages() -> list[str]:
    return list(PASSAGES)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def mem(store_path):
    from hashmem.memory import Memory

    m = Memory(store_path)
    m.add(PASSAGES, metadata=[{"n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(len(PASSAGES))])
    yield m
    m.close()
