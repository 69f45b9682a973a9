#!/bin/sh
# hashmem eval-ask on LoCoMo, issue 11 item 2: the extract answer (new default) against the span answer
# (the previous default), on hints and text stores, same questions. Usage:
#   sh benchmarks/eval_ask_extract.sh [LIMIT] [K]     (LIMIT questions spread over the file, default 60; K hits, default 5)
set -e
N=${1:-60}
K=${2:-5}
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
D=../shared/data/locomo
R=benchmarks/results
for F in text hints; do
  for S in extract span; do
    .venv/bin/hashmem eval-ask $D --fidelity $F --ask-style $S --limit "$N" -k "$K" --json \
      --details $R/eval_ask_${F}_${S}_n${N}_k${K}.jsonl > $R/eval_ask_${F}_${S}_n${N}_k${K}.json
  done
done
