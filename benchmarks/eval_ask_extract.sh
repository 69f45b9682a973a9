#!/bin/sh
# hashmem eval-ask on LoCoMo, issue 11 item 2: the extract answer (new default) against the span answer
# (the previous default), on text and hints stores, same questions. Usage:
#   sh benchmarks/eval_ask_extract.sh [LIMIT] [K] [GGUF] [STYLES] [FIDELITIES]
# LIMIT questions spread over the file (default 60); K hits per question (default 5); GGUF: another model
# (e.g. the assembled Gemma 3 270M, see docs/ask.md; default SmolLM2-135M); STYLES default "extract span";
# FIDELITIES default "text hints". Results: benchmarks/results/eval_ask_<fidelity>_<style>[_gemma]_n<LIMIT>_k<K>.json(l)
set -e
N=${1:-60}
K=${2:-5}
G=${3:-}
STYLES=${4:-extract span}
FIDS=${5:-text hints}
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
D=../shared/data/locomo
R=benchmarks/results
TAG=""
MODEL=""
if [ -n "$G" ]; then TAG="_gemma"; MODEL="--model $G"; fi
for F in $FIDS; do
  for S in $STYLES; do
    .venv/bin/hashmem eval-ask $D --fidelity "$F" --ask-style "$S" --limit "$N" -k "$K" $MODEL --json \
      --details "$R/eval_ask_${F}_${S}${TAG}_n${N}_k${K}.jsonl" > "$R/eval_ask_${F}_${S}${TAG}_n${N}_k${K}.json"
  done
done
