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

.PHONY: install test lint demo bench eval soak bench-threads bench-ingest bench-peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# llama-cpp-python compiles llama.cpp from source. Its default, -march=native, turns on Intel AMX
# tiles wherever the CPU reports them, and a process that may not use them (a VM that does not
# enable the tile state) dies with SIGSEGV in ggml_backend_amx_mul_mat on its first token; so a
# portable AVX2 build. pip caches the built wheel under the sdist's name, not these flags: a wheel
# cached by an earlier build is checked by running one token (LLAMA_CHECK) and rebuilt if it dies.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_CHECK = $(BIN)/python -c "from hashmem.decoders.llmcodec import token_model; token_model(threads=1).start('ok')"
LLAMA_REBUILD = $(BIN)/python -m pip cache remove llama_cpp_python; \
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps \
	  "llama-cpp-python==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"

# torch is pinned to its CPU build (an unpinned torch pulls a multi-GB CUDA build); one pip call, one resolver pass
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0 -e '.[test,llama,bench,server,langchain,llamaindex,milvus]'
	$(LLAMA_CHECK) || { echo "llama.cpp crashed on one token: rebuilding llama-cpp-python ($$CMAKE_ARGS)"; \
	  $(LLAMA_REBUILD); $(LLAMA_CHECK); }
	rm -f $(VENV)/.installed-*
	touch $(STAMP) $(DEMO_STAMP)

# the demo needs the library and the llama.cpp decoder only (not the test, bench and server extras)
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0 -e '.[llama]'
	$(LLAMA_CHECK) || { $(LLAMA_REBUILD); $(LLAMA_CHECK); }
	touch $(DEMO_STAMP)

install: $(STAMP)

# HASHMEM_REQUIRE_MILVUS=1: tests that need the real Milvus server fail instead of skipping
test: install
	$(BIN)/python -m ruff check hashmem memory decoders cli server integrations evaluation tests examples benchmarks
	HASHMEM_REQUIRE_MILVUS=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/python -m ruff check hashmem memory decoders cli server integrations evaluation tests examples benchmarks
	$(BIN)/python -m ruff format --check hashmem memory decoders cli server integrations evaluation tests examples benchmarks

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py

# many processes on one store, writers SIGKILLed (not part of `make test`; ~7 min a store by default):
# a hints store (2 writers), then a text store and an llm store (3 writers each); shorten with e.g.
# `make soak SOAK_ARGS="--seconds 20 --rounds 10"`
soak: install
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)
	$(BIN)/python benchmarks/soak.py --fidelity text --writers 3 --json benchmarks/results/soak_text.json $(SOAK_ARGS)
	$(BIN)/python benchmarks/soak.py --fidelity llm --writers 3 --llm-threads 1 --json benchmarks/results/soak_llm.json $(SOAK_ARGS)

# llm tier add and recall with one core busy and both idle, 2 fixed threads against the adaptive
# choice (issue #22; not part of `make test`; ≤ 28 min: each case is cut at 2 × 150 s + 120 s)
bench-threads: install
	$(BIN)/python benchmarks/llm_threads.py $(BENCH_THREADS_ARGS)

# passages/s of Memory.add with precomputed embeddings (hints and text stores) next to Chroma and LanceDB,
# one run on SciFact (issue 19; not part of `make test`; ~3 min a round)
bench-ingest: install
	$(BIN)/python benchmarks/ingest_vs_peers.py $(BENCH_INGEST_ARGS)

# hashmem next to Chroma, LanceDB, Qdrant (local), sqlite-vec, usearch and faiss on SciFact's 5,183 passages,
# the README's headline table (issue 18; installs the `peers` extra; ~10 min on 2 cores); at 100k:
# `benchmarks/embed_cache.py --distractors 94817` once, then BENCH_PEERS_ARGS="--n 100000 --llm-subset 0"
bench-peers: install
	$(BIN)/python -m pip install --quiet -e '.[peers]'
	$(BIN)/python benchmarks/peers.py $(BENCH_PEERS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
