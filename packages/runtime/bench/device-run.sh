#!/usr/bin/env bash
# One GPU-machine call for the runtime: transformers' random-weight models against the runtime
# (every architecture variant, every CUDA path, batched against alone), then a Llama-shaped model
# (7b or 8b) served through the scheduler, with its PyTorch anchors in the same call.
# Run from the project root after `source .device-carry/env.sh`:
#   bash packages/runtime/bench/device-run.sh SHAPE SERVING_CASES STATIC_CASES [--skip-check]
# STATIC_CASES "-" skips the anchor. With STANDARD_CASES set, those cases run again with attention: 'standard' (the materialized
# baseline) on the same model, after the flash ones. With VARIANT_CASES and VARIANTS set (space-
# separated NAME:VAR=VALUE[,VAR=VALUE] entries, e.g. "nopdl:FASTATTN_CUDA_PDL=0"), those cases run
# again once per variant with its environment: an A/B of a tuning on the same model.
# Results under $OUT: hf-check.json, serving-SHAPE.json, [serving-SHAPE-standard.json,]
# [serving-SHAPE-NAME.json per variant,] static-SHAPE.json, transformers-SHAPE.json, run.log.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
shape=$1 serving=$2 static=$3
work=/tmp/fa-runtime; mkdir -p "$work"
step() { echo "== $1 ($(date +%T))"; }
if [[ " $* " != *" --skip-check "* ]]; then
  step "transformers variants vs the runtime"
  timeout 120 python3 tools/anchors/hf_models.py "$work/hf" > "$work/hf.log" 2>&1 || tail -5 "$work/hf.log"
  timeout 240 node packages/runtime/bench/hf-check.mjs "$work/hf" "$OUT/hf-check.json" 2>&1 | grep -v "^$"
fi
step "build the $shape model (random fp16), transformers generate anchor"
timeout 240 python3 tools/anchors/llama_7b.py "$work/$shape" 1000 64 "$OUT/transformers-$shape.json" "$shape" 2>&1 | tail -3
step "serving through the scheduler: $serving"
timeout 300 node packages/runtime/bench/serving.mjs "$work/$shape" "$OUT/serving-$shape.json" "$serving" 2>&1
if [[ -n "${STANDARD_CASES:-}" ]]; then
  step "the same runtime with attention 'standard': $STANDARD_CASES"
  timeout 300 node packages/runtime/bench/serving.mjs "$work/$shape" "$OUT/serving-$shape-standard.json" \
    "$STANDARD_CASES" --attention standard 2>&1
fi
for variant in ${VARIANTS:-}; do
  name=${variant%%:*} vars=${variant#*:}
  step "variant $name ($vars): $VARIANT_CASES"
  env ${vars//,/ } timeout 200 node packages/runtime/bench/serving.mjs "$work/$shape" "$OUT/serving-$shape-$name.json" \
    "$VARIANT_CASES" 2>&1
done
rm -rf "$work/$shape"
if [[ "$static" != "-" ]]; then
  step "PyTorch static-cache anchor: $static"
  timeout 400 python3 tools/anchors/llama_static.py "$shape" "$OUT/static-$shape.json" "$static" 2>&1 | grep -v Warning
fi
step done
