#!/usr/bin/env bash
# Per-kernel GPU time of one serving case, from Nsight Compute: every kernel the first LAUNCHES
# launches (graph nodes included) run one at a time, with the clocks and caches left alone.
# Run from the project root on the GPU machine, after `source .device-carry/env.sh`:
#   [LAUNCH_SKIP=N] bash packages/runtime/bench/kernel-profile.sh MODEL_DIR CASE LAUNCHES OUT.csv [serving.mjs flags]
# LAUNCH_SKIP skips the first N launches (serving.mjs's warm-up request makes about 1240 on a 32-layer model).
# Then, anywhere: node packages/runtime/bench/kernel-table.mjs OUT.csv
set -uo pipefail
dir=$1 case=$2 launches=$3 csv=$4
shift 4
ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --print-units base \
  --launch-skip "${LAUNCH_SKIP:-0}" --launch-count "$launches" node packages/runtime/bench/serving.mjs "$dir" /tmp/kernel-profile.json "$case" "$@" \
  > "$csv.raw" 2> "${csv%.csv}.log"
# ncu prints the application's own output before its table: keep the table
grep -n '^"ID"' "$csv.raw" | head -1 | cut -d: -f1 | xargs -I{} tail -n +{} "$csv.raw" > "$csv"
rm -f "$csv.raw"
echo "$(($(wc -l < "$csv") - 1)) kernel rows in $csv"
