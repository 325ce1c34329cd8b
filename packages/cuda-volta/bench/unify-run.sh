#!/usr/bin/env bash
# Device calls for the one-kernel-body change (issue: one FlashAttention body over per-architecture
# tiles). Run from the project root after `source .device-carry/env.sh`; results under $OUT.
#   STEP=tests  the package's test suite (the CUDA 11.8 compute_70 volta build included when
#               build/cuda118/kernels exists)
#   STEP=ab     the A/B of build/kernels-base (the build before the change) against build/kernels
#               on every path, head dim, prefill and decode
#   STEP=check  both: tests, then ab
#   STEP=bench  bench/run.mjs and the PyTorch anchors in the same call, and the summary table
#   STEP=sanitize  memcheck and racecheck of bench/sanity.mjs on every path
#   STEP=alts   for each prefill configuration in ALT_PREFILL (comma-separated suffixes), the
#               attention, paged, conformance and nonfinite suites planned with it
#               (FASTATTN_CUDA_PREFILL_CONFIG), memcheck and racecheck of the hopper sanity cases
#               with it, then bench/alt-check.mjs over all of them; then, for each entry of AB_NEW
#               (';'-separated FASTATTN_AB_NEW_CONFIG values), the hopper A/B of the default
#               against it in the same build
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
cd packages/cuda-volta
s=$OUT/summary.log
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader; } | tee -a "$s"
steps=${STEP:-check}
steps=${steps//check/tests ab}
for step in $steps; do
if [[ $step == tests ]]; then
  t0=$(date +%s)
  [[ -d build/cuda118/kernels ]] && export FASTATTN_CUDA118_KERNEL_DIR=$PWD/build/cuda118/kernels
  timeout ${TEST_S:-240} ../../node_modules/.bin/vitest run > "$OUT/test.log" 2>&1
  echo "tests rc=$? in $(( $(date +%s) - t0 )) s" | tee -a "$s"
  grep -E "Test Files|Tests  |FAIL|skipped:" "$OUT/test.log" | head -40 | tee -a "$s"
fi
if [[ $step == ab ]]; then
  # The build before the change had no fused combine on volta and turing: their A/B runs both
  # builds with the separate combine kernel, so it compares the kernels.
  IFS=';' read -ra sets <<< "${AB_SETS:-hopper,ampere 1;turing,volta 0}"
  for set in "${sets[@]}"; do
    read -r paths fused <<< "$set"
    t0=$(date +%s)
    FASTATTN_AB_PATHS=$paths FASTATTN_CUDA_FUSED_COMBINE=$fused FASTATTN_AB_OUT=$OUT/ab-${paths/,/-}.json \
      timeout ${AB_S:-200} node bench/ab-paths.mjs build/kernels-base build/kernels > "$OUT/ab-${paths/,/-}.log" 2>&1
    echo "ab $paths (fused combine $fused) rc=$? in $(( $(date +%s) - t0 )) s" | tee -a "$s"
    grep -E "^ab|BAD|skipped|failed" "$OUT/ab-${paths/,/-}.log" | tee -a "$s"
  done
fi
if [[ $step == bench ]]; then
  FASTATTN_BENCH_OUT=$OUT/cuda.json timeout ${BENCH_S:-240} node bench/run.mjs > "$OUT/bench.log" 2>&1
  echo "bench rc=$?" | tee -a "$s"
  PYTHONUNBUFFERED=1 timeout ${ANCHOR_S:-200} python3 ../../tools/anchors/sdpa_cuda.py "$OUT/anchors.json" >> "$OUT/bench.log" 2>&1
  echo "anchors rc=$?" | tee -a "$s"
  node bench/summary.mjs "$OUT/cuda.json" "$OUT/anchors.json" 2>&1 | tee -a "$s"
fi
if [[ $step == sanitize ]]; then
  for path in hopper ampere turing volta; do
    timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 node bench/sanity.mjs $path > "$OUT/memcheck-$path.log" 2>&1
    echo "memcheck $path rc=$?: $(grep -E 'sanity|ERROR SUMMARY' "$OUT/memcheck-$path.log" | tr '\n' ' ')" | tee -a "$s"
    timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 node bench/sanity.mjs $path > "$OUT/racecheck-$path.log" 2>&1
    echo "racecheck $path rc=$?: $(grep -E 'sanity|RACECHECK SUMMARY' "$OUT/racecheck-$path.log" | tr '\n' ' ')" | tee -a "$s"
  done
fi
if [[ $step == alts ]]; then
  for cfg in ${ALT_PREFILL//,/ }; do
    t0=$(date +%s)
    FASTATTN_CUDA_PREFILL_CONFIG=$cfg timeout ${TEST_S:-200} ../../node_modules/.bin/vitest run test/attention.test.ts \
      test/paged.test.ts test/conformance.test.ts test/nonfinite.test.ts >> "$OUT/alts-test.log" 2>&1
    echo "tests with prefill $cfg rc=$? in $(( $(date +%s) - t0 )) s" | tee -a "$s"
    grep -E "Tests  |FAIL" "$OUT/alts-test.log" | tail -3 | tee -a "$s"
    for tool in memcheck racecheck; do
      FASTATTN_CUDA_PREFILL_CONFIG=$cfg timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 node bench/sanity.mjs hopper \
        > "$OUT/$tool.tmp" 2>&1
      echo "$tool hopper prefill $cfg rc=$?: $(grep -E 'sanity|SUMMARY' "$OUT/$tool.tmp" | tr '\n' ' ')" | tee -a "$s"
      cat "$OUT/$tool.tmp" >> "$OUT/alts-sanitize.log"
    done
  done
  rm -f "$OUT"/*.tmp
  FASTATTN_BENCH_ALT_PREFILL=$ALT_PREFILL timeout 200 node bench/alt-check.mjs > "$OUT/alt-check.log" 2>&1
  echo "alt-check rc=$?: $(tail -1 "$OUT/alt-check.log")" | tee -a "$s"
  IFS=';' read -ra news <<< "${AB_NEW:-}"
  for i in "${!news[@]}"; do
    FASTATTN_AB_PATHS=hopper FASTATTN_AB_HDS=${AB_HDS:-64,128} FASTATTN_AB_NEW_CONFIG=${news[$i]} \
      FASTATTN_AB_OUT=$OUT/ab-alt$i.json timeout ${AB_S:-200} node bench/ab-paths.mjs build/kernels build/kernels \
      > "$OUT/ab-alt$i.log" 2>&1
    echo "ab default vs ${news[$i]} rc=$?" | tee -a "$s"
    grep -E "^ab|BAD|failed" "$OUT/ab-alt$i.log" | tee -a "$s"
  done
fi
done
