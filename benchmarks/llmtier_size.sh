#!/bin/sh
# The llm fidelity tier against gzip -9, zstd -19 and the text tier (zstd + dictionary), per passage,
# on SciFact and Canterbury ~60-word passages, with an independent decode of every body.
# Usage: sh benchmarks/llmtier_size.sh [N]   (N passages per dataset, default 80; ~12 s each on 2 busy cores)
set -e
N=${1:-80}
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
for ds in scifact-train canterbury; do
  .venv/bin/hashmem eval-recall ../shared/data/$ds --sample 1 --index 1000 --decoders extractive \
    --llm-sample "$N" --json > benchmarks/results/llmtier_$ds.json
done
