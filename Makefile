# hashmem: set-up and runs. `make test` and `make demo` create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUM    := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-$(SUM)
DEMO_STAMP := $(VENV)/.installed-demo-$(SUM)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test lint demo bench eval soak bench-threads clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is pinned to its CPU build (an unpinned torch pulls a multi-GB CUDA build); one pip call, one resolver pass
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0 -e '.[test,llama,bench,server,langchain,llamaindex,milvus]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP) $(DEMO_STAMP)

# the demo needs the library and the llama.cpp decoder only (not the test, bench and server extras)
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0 -e '.[llama]'
	touch $(DEMO_STAMP)

install: $(STAMP)

# HASHMEM_REQUIRE_MILVUS=1: tests that need the real Milvus server fail instead of skipping
test: install
	$(BIN)/python -m ruff check hashmem memory decoders cli server integrations tests examples benchmarks
	HASHMEM_REQUIRE_MILVUS=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/python -m ruff check hashmem memory decoders cli server integrations tests examples benchmarks
	$(BIN)/python -m ruff format --check hashmem memory decoders cli server integrations tests examples benchmarks

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py

# many processes on one store, writers SIGKILLed (not part of `make test`; ~7 min by default);
# shorten with e.g. `make soak SOAK_ARGS="--seconds 20 --rounds 10"`
soak: install
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

# llm tier add and recall with one core busy and both idle, 2 fixed threads against the adaptive
# choice (issue #22; not part of `make test`; ≤ 28 min: each case is cut at 2 × 150 s + 120 s)
bench-threads: install
	$(BIN)/python benchmarks/llm_threads.py $(BENCH_THREADS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
