#!/bin/sh
# hashmem eval-ask on LoCoMo: the earlier default answer (main's code) vs the span answer, hints vs text
# stores, SmolLM2-135M vs Gemma 3 270M. Usage: sh benchmarks/eval_ask.sh [LIMIT] [GEMMA_GGUF]
# (LIMIT questions spread over the file, default 30; GEMMA_GGUF: the assembled Gemma 3 270M file)
set -e
N=${1:-30}
G=${2:-}
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
D=../shared/data/locomo
R=benchmarks/results
# the earlier default: decoders/llama.py as it is on main (free answer citing [id]s, its own check)
.venv/bin/python benchmarks/eval_ask_baseline.py $D --rev main --limit "$N" --details $R/eval_ask_hints_main.jsonl > $R/eval_ask_hints_main.json
.venv/bin/hashmem eval-ask $D --fidelity hints --ask-style span --limit "$N" --json --details $R/eval_ask_hints_span.jsonl > $R/eval_ask_hints_span.json
.venv/bin/hashmem eval-ask $D --fidelity text --ask-style span --limit "$N" --json --details $R/eval_ask_text_span.jsonl > $R/eval_ask_text_span.json
if [ -n "$G" ]; then
  .venv/bin/hashmem eval-ask $D --fidelity hints --ask-style span --limit "$N" --model "$G" --json \
    --details $R/eval_ask_hints_span_gemma.jsonl > $R/eval_ask_hints_span_gemma.json
fi
