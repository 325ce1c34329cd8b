#!/usr/bin/env bash
# One device call for the ampere path on the GPU machine: build check, the full cuda test suite,
# compute-sanitizer memcheck + racecheck on a small case, then the benchmarks and the PyTorch
# anchors in the same call, and a summary table last. Run from the project root after
#   source .device-carry/env.sh   (or a private copy made by pack.sh with another out dir, e.g. .ampere-carry,
#   when other sessions re-pack .device-carry at the same time)
# Usage: bash packages/cuda-volta/bench/device-run.sh [prefill|decode|all] [sass] [ncu]
# Results under $OUT: test.log, sanity.log, cuda.json, anchors.json, bench.log (+ sass, ncu).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
which=${1:-all}; shift || true
extra=" $* "
root=$(pwd)
cd packages/cuda-volta
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee "$OUT/bench.log"
cat build/kernels/manifest.json | tee -a "$OUT/bench.log"
if [[ $extra == *" sass "* ]]; then
  for f in build/kernels/ampere/fwd_hd128.fatbin ../../.ampere-carry/hd128_old.cubin; do
    [[ -e $f ]] || continue
    echo "== $f"; cuobjdump -res-usage "$f" 2>&1 | grep -A1 prefill_f16
    cuobjdump -sass -fun fa_ampere_prefill_f16_hd128_128x64w4s2 "$f" 2>/dev/null
  done > "$OUT/sass.txt" 2>&1
  xz -9 "$OUT/sass.txt"
fi
t0=$(date +%s)
(cd "$root" && timeout 300 node_modules/.bin/vitest run --project cuda 2>&1) > "$OUT/test.log"; trc=$?
echo "tests rc=$trc in $(( $(date +%s) - t0 )) s: $(grep -E 'Tests|Test Files' "$OUT/test.log" | tr '\n' ' ')" | tee -a "$OUT/bench.log"
t0=$(date +%s)
{ timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 node bench/sanity.mjs 2>&1 | tail -4; echo "memcheck rc=$?";
  timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 node bench/sanity.mjs 2>&1 | tail -4; echo "racecheck rc=$?"; } > "$OUT/sanity.log"
echo "sanitizer in $(( $(date +%s) - t0 )) s: $(grep -E 'rc=|ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanity.log" | tr '\n' ' ')" | tee -a "$OUT/bench.log"
args=(); [[ $which == all ]] || args=("$which")
FASTATTN_BENCH_OUT=$OUT/cuda.json timeout 200 node bench/run.mjs "${args[@]}" 2>&1 | tee -a "$OUT/bench.log"
PYTHONUNBUFFERED=1 timeout 200 python3 ../../tools/anchors/sdpa_cuda.py "$OUT/anchors.json" "${args[@]}" 2>&1 | tee -a "$OUT/bench.log"
if [[ $extra == *" ncu "* ]]; then
  timeout 90 ncu --kernel-name regex:prefill_f16_hd128 --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section SchedulerStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section Occupancy node bench/one.mjs > "$OUT/ncu.txt" 2>&1
  echo "ncu rc=$?" >> "$OUT/ncu.txt"
fi
node bench/summary.mjs "$OUT/cuda.json" "$OUT/anchors.json" 2>&1 | tee "$OUT/summary.txt"
