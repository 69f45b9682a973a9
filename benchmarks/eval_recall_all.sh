#!/usr/bin/env bash
# Reconstruction fidelity and text-tier size: every measurement quoted in docs/recall.md.
# Each run takes the shared benchmark lock, so timings are not skewed by other benchmarks.
# Usage: bash benchmarks/eval_recall_all.sh [main|budget|choices]...  (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DATA=${HASHMEM_DATA:-../shared/data}
OUT=benchmarks/results
mkdir -p "$OUT"
run() {  # run NAME ARGS...: one eval-recall, its JSON kept in $OUT/NAME.json
    local name=$1; shift
    echo "== $name: hashmem eval-recall $*" >&2
    flock /tmp/hashmem-bench.lock .venv/bin/hashmem eval-recall "$@" --json > "$OUT/$name.json"
    cat "$OUT/$name.json" >&2
}
parts=${*:-main budget choices}
for part in $parts; do
  case $part in
    main)
      run scifact_main "$DATA/scifact-train" --sample 100 --index 1000
      run canterbury_main "$DATA/canterbury" --sample 100 --index 1000 ;;
    budget)
      for b in 32 64 128; do
        run "scifact_hint$b" "$DATA/scifact-train" --sample 50 --index 1000 --hint-bytes "$b"
        run "canterbury_hint$b" "$DATA/canterbury" --sample 50 --index 1000 --hint-bytes "$b"
      done ;;
    choices)
      for n in 1 2 3 5; do
        run "scifact_n$n" "$DATA/scifact-train" --sample 40 --index 1000 --decoders llama --candidates "$n"
      done
      run scifact_expand8 "$DATA/scifact-train" --sample 40 --index 1000 --decoders llama --expand-terms 8
      run scifact_free "$DATA/scifact-train" --sample 40 --index 1000 --decoders llama --style free
      run scifact_threads1 "$DATA/scifact-train" --sample 40 --index 1000 --decoders llama --threads 1 ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
