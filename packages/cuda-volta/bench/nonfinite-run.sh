#!/usr/bin/env bash
# One device call for the non-finite and contract fixes (run 8): installs a private sm_90 build
# (.nf-build: kernels, addon, and the hd128 ampere/hopper/combine fatbins of the commit before
# the fixes as a baseline kernel directory), runs the package's whole test suite, A/Bs prefill and
# decode speed baseline vs fixed in one process each, and memchecks bench/sanity.mjs.
# Run from the project root after `source .device-carry/env.sh`. Results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
cd packages/cuda-volta
nf=../../.nf-build
rm -rf build/kernels build/kernels-base && mkdir -p build/Release
cp -r $nf/kernels build/kernels && cp $nf/Release/fa_cuda.node build/Release/
cp -r $nf/kernels build/kernels-base
for f in ampere/fwd_hd128 hopper/fwd_hd128 common/combine; do cp $nf/base/$f.fatbin build/kernels-base/$f.fatbin; done
s=$OUT/summary.log
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader; } | tee "$s"
t0=$(date +%s)
timeout ${TEST_S:-300} ../../node_modules/.bin/vitest run ${TESTS:-} > "$OUT/test.log" 2>&1
echo "tests rc=$? in $(( $(date +%s) - t0 )) s" | tee -a "$s"
grep -E "Test Files|Tests  |FAIL|skipped:" "$OUT/test.log" | head -40 | tee -a "$s"
if [[ ${BEFORE:-1} == 1 ]]; then
  # The same non-finite cases on the baseline kernels (hd128 ampere/hopper/combine from before the
  # fixes; the other head dims are the fixed ones): the hd128 cases must fail there.
  FASTATTN_CUDA_TEST_KERNEL_DIR=build/kernels-base timeout 90 ../../node_modules/.bin/vitest run test/nonfinite.test.ts > "$OUT/before.log" 2>&1
  echo "non-finite cases on the baseline kernels: rc=$? $(grep -E 'Tests  ' "$OUT/before.log")" | tee -a "$s"
  grep -E "FAIL .*>" "$OUT/before.log" | sed "s/.*nonfinite.test.ts > //" | sort -u | head -40 | tee -a "$s"
fi
if [[ ${BENCH:-1} == 1 ]]; then
  FASTATTN_AB_OUT=$OUT/ab-prefill.json timeout 130 node bench/ab.mjs build/kernels-base build/kernels > "$OUT/ab.log" 2>&1
  FASTATTN_AB_OUT=$OUT/ab-decode.json timeout 70 node bench/ab-decode.mjs build/kernels-base build/kernels >> "$OUT/ab.log" 2>&1
  grep -E "^ab|check|BAD" "$OUT/ab.log" | tee -a "$s"
fi
if [[ ${MEMCHECK:-1} == 1 ]]; then
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 node bench/sanity.mjs > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log")" | tee -a "$s"
fi
