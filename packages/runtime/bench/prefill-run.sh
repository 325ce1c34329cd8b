#!/usr/bin/env bash
# One GPU-machine call for the runtime's prefill (Llama-2-7B shape, random fp16 weights): the
# prompt speed at several prefill chunk sizes, and one 2048-token chunk kernel by kernel.
# Run from the project root after `source .device-carry/env.sh`:
#   bash packages/runtime/bench/prefill-run.sh [CHUNKS]   (default 2048,4096,8192,16384)
# Results under $OUT: prefill-chunk-N.json, ncu-prefill.csv, run.log.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
work=/tmp/fa-runtime; mkdir -p "$work"
step() { echo "== $1 ($(date +%T))"; }
step "build the 7b model (random fp16)"
timeout 240 python3 tools/anchors/llama_7b.py "$work/7b" 128 8 "$work/t.json" 7b 2>&1 | tail -2
for chunk in $(echo "${1:-2048,4096,8192,16384}" | tr , ' '); do
  step "prefill, chunks of $chunk"
  timeout 150 node packages/runtime/bench/serving.mjs "$work/7b" "$OUT/prefill-chunk-$chunk.json" \
    prefill:4096,prefill:16384 --prefill-chunk "$chunk" 2>&1 | grep -E "prefill|Error"
done
step "one 2048-token chunk, kernel by kernel"
timeout 240 bash packages/runtime/bench/kernel-profile.sh "$work/7b" prefill:2048 1400 "$OUT/ncu-prefill.csv"
step done
