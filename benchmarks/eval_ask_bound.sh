#!/bin/sh
# hashmem eval-ask, issue 19 item 2 (ask bounded by design): LoCoMo (N questions) and the book set
# (benchmarks/data/book_ask), text store, extract answer, k hits, T llama.cpp threads. Usage:
#   sh benchmarks/eval_ask_bound.sh TAG [N] [K] [T] [SETS]
# TAG names the results: benchmarks/results/eval_ask_bound_<TAG>_{locomo,book}.json(l); the load
# (uptime) before and after each run is appended to benchmarks/results/eval_ask_bound_<TAG>_load.txt.
# SETS: default "locomo book". On 2026-12-07 (load 13-18) the four runs (before/after x locomo/book) ran
# side by side, T=1, each set as its own process (SETS=locomo, SETS=book) so that they shared the load.
# "before" was run on the code before the bound with PYTHONPATH pointing at an export of it
# (git archive c251291) plus this branch's evaluation/ask.py (which reads the book set).
set -e
TAG=$1
N=${2:-60}
K=${3:-5}
T=${4:-2}  # 1 on a loaded machine: spinning threads on shared cores run several times slower
SETS=${5:-locomo book}
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
R=benchmarks/results/eval_ask_bound_${TAG}
for SET in $SETS; do
  if [ "$SET" = locomo ]; then D=../shared/data/locomo; LIM="--limit $N"; else D=benchmarks/data/book_ask; LIM=""; fi
  echo "$SET start $(uptime)" >> "${R}_load.txt"
  .venv/bin/hashmem eval-ask $D --fidelity text --ask-style extract $LIM -k "$K" --threads "$T" --json \
    --details "${R}_${SET}.jsonl" > "${R}_${SET}.json"
  echo "$SET end $(uptime)" >> "${R}_load.txt"
done
