#!/usr/bin/env bash
# One GPU-machine call for the hopper decode kernels: the cuda suite, memcheck and racecheck,
# every decode configuration against the float64 reference, then the new defaults against the
# ampere decode kernels they replaced (the same build, timed by name), dense and paged.
# Run from the project root after `source .device-carry/env.sh`:
#   bash packages/cuda-volta/bench/decode-run.sh
# Results under $OUT: test.log, sanity.log, alt-check.log, sweep.log, paged-32x32.json and
# paged-32x8.json (the new defaults; the old kernels' lines are in the printed log).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
step() { echo "== $1 ($(date +%T))"; }
step "cuda suite"
timeout 200 node_modules/.bin/vitest run --project cuda > "$OUT/test.log" 2>&1
grep -E "Test Files|Tests |FAIL" "$OUT/test.log" | head -20
cd packages/cuda-volta
step "memcheck and racecheck"
{ timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 node bench/sanity.mjs 2>&1 | tail -3; echo "memcheck rc=$?"
  timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 node bench/sanity.mjs 2>&1 | tail -3; echo "racecheck rc=$?"
  timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 node bench/exec-sanity.mjs 2>&1 | tail -3; echo "exec memcheck rc=$?"; } > "$OUT/sanity.log"
grep -E "rc=|SUMMARY|sanity" "$OUT/sanity.log"
step "every decode configuration against the reference"
FASTATTN_BENCH_ALT_DECODE=hd64_64x128w8s3,hd80_64x128w8s3,hd96_64x128w8s3,hd128_64x64w8s4,hd128_16x128w4s3,hd64_16x64w4s3 \
  timeout 150 node bench/alt-check.mjs > "$OUT/alt-check.log" 2>&1; tail -1 "$OUT/alt-check.log"
step "new decode defaults against the ampere kernels (dense, split-sweep)"
{
  for hd_old in 64:hd64_16x64w4s3 80:hd80_64x128w4s3 96:hd96_64x128w4s3 128:hd128_16x128w4s3; do
    FASTATTN_SWEEP_HD=${hd_old%%:*} FASTATTN_SWEEP_CONFIGS=",${hd_old#*:}" FASTATTN_SWEEP_SHAPES=1x1024,1x32768,16x8192,64x2048 \
      timeout 120 node bench/split-sweep.mjs 0 2>&1 | grep -v copy
  done
  FASTATTN_SWEEP_HEADS=32x32 FASTATTN_SWEEP_CONFIGS=",hd128_16x128w4s3" FASTATTN_SWEEP_SHAPES=1x1024,1x32768,64x2048 \
    timeout 120 node bench/split-sweep.mjs 0 2>&1 | grep -v copy
} > "$OUT/sweep.log"; cat "$OUT/sweep.log"
step "paged against dense, new default and old"
for cfg in "" hd128_16x128w4s3; do
  for heads in 32/32 32/8; do
    # the new defaults' rows also as JSON; the old kernels' only in the log
    json=$([[ -z $cfg ]] && echo "$OUT/paged-${heads/\//x}.json")
    FASTATTN_CUDA_DECODE_CONFIG=$cfg FASTATTN_PAGED_HEADS=$heads FASTATTN_PAGED_BLOCKS=16,64,256 \
      FASTATTN_BENCH_OUT=$json timeout 120 node bench/paged.mjs 2>&1 | grep decode
  done
done
step done
