#!/usr/bin/env bash
# Device calls for hopper prefill work (BENCHMARKS.md, "Where short hd 64 prefill spends its time").
# Run from the project root after `source .device-carry/env.sh`; results under $OUT. Steps, each
# when its variable is set:
#   SUITE=1        the package's tests, memcheck and racecheck of bench/sanity.mjs on hopper
#   AB_BASE=dir    A/B of that kernel directory (the build before a change) against build/kernels
#                  on the paths AB_PATHS (default hopper), head dims AB_HDS (default 64,128,80,96,256)
#   VARIANT_DIRS   A/B of build/kernels against each of these directories (diagnostic builds) at hd 64
#   NCU_SHAPES     Nsight Compute of build/kernels on each bench/one.mjs argument list (';'-separated):
#                  pipe use, scheduler, warp states and stall reasons
#   NCU_SOURCE     the same shapes' per-instruction counts and sampled stalls (SourceCounters), one
#                  CSV of the SASS source page per shape (src-<n>.csv)
#   CLOCK_SHAPES   each bench/one.mjs argument list (';'-separated) launched for about 3 s while the
#                  GPU's clock and power are read every 50 ms: median SM clock and power under load
#   SWEEP_CONFIGS  bench/shape-sweep.mjs at hd 64 over these configurations (',default' = the plan)
#   ALTS=a,b       timing-only prefill configurations: bench/alt-check.mjs on them, then
#                  bench/run.mjs prefill with each timed beside the plan's choice
#   BENCH=1        bench/run.mjs and the PyTorch anchors in the same call, and the summary table
#   ROUNDS=n       prefill only: bench/run.mjs and the anchors alternating n times, clocks logged
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
cd packages/cuda-volta
s=$OUT/summary.log
{ date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee -a "$s"
if [[ -n ${SUITE:-} ]]; then
  t0=$(date +%s)
  timeout 150 ../../node_modules/.bin/vitest run > "$OUT/test.log" 2>&1
  echo "tests rc=$? in $(( $(date +%s) - t0 )) s" | tee -a "$s"
  grep -E "Test Files|Tests  |FAIL" "$OUT/test.log" | head -20 | tee -a "$s"
  for tool in memcheck racecheck; do
    timeout 120 compute-sanitizer --tool $tool --print-limit 5 node bench/sanity.mjs hopper > "$OUT/$tool.log" 2>&1
    echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log")" | tee -a "$s"
  done
fi
ab() {  # ab <base dir> <new dir> <tag> <head dims>
  FASTATTN_AB_PATHS=${AB_PATHS:-hopper} FASTATTN_AB_HDS=$4 FASTATTN_AB_OUT=$OUT/ab-$3.json \
    timeout 200 node bench/ab-paths.mjs "$1" "$2" > "$OUT/ab-$3.log" 2>&1
  echo "ab $3 rc=$?" | tee -a "$s"
  grep -E "^ab|BAD|failed" "$OUT/ab-$3.log" | tee -a "$s"
}
[[ -n ${AB_BASE:-} ]] && ab "$AB_BASE" build/kernels new "${AB_HDS:-64,128,80,96,256}"
for d in ${VARIANT_DIRS:-}; do ab build/kernels "$d" "$(basename "$d")" 64; done
IFS=';' read -ra shapes <<< "${NCU_SHAPES:-}"
for args in "${shapes[@]}"; do
  echo "== $args" >> "$OUT/ncu.txt"
  timeout 120 ncu --kernel-name regex:fa_hopper_prefill --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section InstructionStats \
    --section SchedulerStats --metrics "regex:sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active,regex:sm__pipe_.*cycles_active\.avg\.pct_of_peak_sustained_active" \
    node bench/one.mjs $args >> "$OUT/ncu.txt" 2>&1
  timeout 120 ncu --kernel-name regex:fa_hopper_prefill --launch-skip 1 --launch-count 1 \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" \
    node bench/one.mjs $args >> "$OUT/ncu.txt" 2>&1
  echo "ncu $args rc=$?" | tee -a "$s"
done
IFS=';' read -ra shapes <<< "${NCU_SOURCE:-}"
for i in "${!shapes[@]}"; do
  args=${shapes[$i]}
  timeout 150 ncu --kernel-name regex:fa_hopper_prefill --launch-skip 1 --launch-count 1 \
    --section SourceCounters --section WarpStateStats -f -o "$OUT/src-$i" node bench/one.mjs $args > "$OUT/src-$i.log" 2>&1
  timeout 60 ncu --import "$OUT/src-$i.ncu-rep" --page source --print-source sass --csv > "$OUT/src-$i.csv" 2>&1
  echo "ncu source $i ($args) rc=$? $(wc -l < "$OUT/src-$i.csv") lines" | tee -a "$s"
done
IFS=';' read -ra shapes <<< "${CLOCK_SHAPES:-}"
for i in "${!shapes[@]}"; do
  args=${shapes[$i]}
  nvidia-smi --query-gpu=clocks.sm,power.draw,clocks_event_reasons.active --format=csv,noheader,nounits \
    -lms 50 > "$OUT/clk-$i.csv" 2>&1 &
  smi=$!
  line=$(FASTATTN_ONE_ITERS=${CLOCK_ITERS:-3000} timeout 60 node bench/one.mjs $args 2>&1 | tail -1)
  kill $smi
  # samples drawing over 250 W: the kernel's, not the set-up's
  stat=$(python3 -c 'import sys, statistics as st
rows = [l.split(", ") for l in open(sys.argv[1]) if l.count(",") >= 2]
load = [(float(r[0]), float(r[1])) for r in rows if r[1].replace(".", "").isdigit() and float(r[1]) > 250]
print(f"{len(load)} samples over 250 W: median {st.median(c for c, _ in load):.0f} MHz, {st.median(w for _, w in load):.0f} W" if load else "no sample over 250 W")' "$OUT/clk-$i.csv")
  echo "clock $line | $stat" | tee -a "$s"
done
if [[ -n ${ALTS:-} ]]; then
  FASTATTN_BENCH_ALT_PREFILL=$ALTS timeout 200 node bench/alt-check.mjs > "$OUT/alt-check.log" 2>&1
  echo "alt-check rc=$? $(tail -1 "$OUT/alt-check.log")" | tee -a "$s"
  FASTATTN_BENCH_ALT_PREFILL=$ALTS FASTATTN_BENCH_OUT=$OUT/alts.json timeout 300 node bench/run.mjs prefill \
    > "$OUT/alts.log" 2>&1
  echo "alts rc=$?" | tee -a "$s"
  grep -A8 ",64 " "$OUT/alts.log" | grep -v "^--" | tee -a "$s"
fi
if [[ -n ${SWEEP_CONFIGS:-} ]]; then
  FASTATTN_SWEEP_CONFIGS=$SWEEP_CONFIGS timeout 200 node bench/shape-sweep.mjs "$OUT/sweep.json" 2>&1 | tee -a "$s"
fi
if [[ -n ${BENCH:-} ]]; then
  FASTATTN_BENCH_OUT=$OUT/cuda.json timeout 240 node bench/run.mjs > "$OUT/bench.log" 2>&1
  echo "bench rc=$?" | tee -a "$s"
  PYTHONUNBUFFERED=1 timeout 200 python3 ../../tools/anchors/sdpa_cuda.py "$OUT/anchors.json" >> "$OUT/bench.log" 2>&1
  echo "anchors rc=$?" | tee -a "$s"
  node bench/summary.mjs "$OUT/cuda.json" "$OUT/anchors.json" > "$OUT/bench-summary.txt" 2>&1
  grep -E ",64 \|" "$OUT/bench-summary.txt" | tee -a "$s"
fi
if [[ -n ${ROUNDS:-} ]]; then
  # Prefill only, ours and the anchors alternating ROUNDS times, with the GPU's clocks, power and
  # temperature logged throughout: the ratios of each round, and their spread.
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
    --format=csv -lms 250 > "$OUT/clocks.csv" 2>&1 &
  smi=$!
  for r in $(seq 1 "$ROUNDS"); do
    FASTATTN_BENCH_OUT=$OUT/r$r-cuda.json timeout 240 node bench/run.mjs prefill > /dev/null 2>&1
    PYTHONUNBUFFERED=1 timeout 200 python3 ../../tools/anchors/sdpa_cuda.py "$OUT/r$r-anchors.json" prefill > /dev/null 2>&1
    node bench/summary.mjs "$OUT/r$r-cuda.json" "$OUT/r$r-anchors.json" > "$OUT/r$r-summary.txt" 2>&1
    echo "round $r: $(date -u +%T)" | tee -a "$s"
    grep -E ",64 \|" "$OUT/r$r-summary.txt" | tee -a "$s"
  done
  kill $smi
fi
