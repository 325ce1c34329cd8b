#!/usr/bin/env bash
# Old vs new kernel evidence for a regression: SASS of a kernel from both kernel directories and an
# ncu profile of one launch of each. Run from the project root after `source .device-carry/env.sh`.
#   KERNEL=fa_hopper_prefill_f16_hd128_128x128w12s3 MODULE=hopper/fwd_hd128 ARGS="4 32 4096 128 f16 none" \
#     bash packages/cuda-volta/bench/diag-run.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
cd packages/cuda-volta
for dir in build/kernels-base build/kernels; do
  tag=$(basename $dir)-$KERNEL
  cuobjdump -sass -fun "$KERNEL" "$dir/$MODULE.fatbin" > "$OUT/sass-$tag.txt" 2>&1
  cuobjdump -res-usage "$dir/$MODULE.fatbin" 2>&1 | grep -A1 "$KERNEL" > "$OUT/res-$tag.txt"
  FASTATTN_ONE_KERNEL_DIR=$dir FASTATTN_ONE_PATH=${PATHNAME:-} timeout 120 ncu --kernel-name "$KERNEL" --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section InstructionStats --section SchedulerStats \
    --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats node bench/one.mjs $ARGS > "$OUT/ncu-$tag.txt" 2>&1
  echo "$tag ncu rc=$? $(grep -E 'Duration|Registers Per' "$OUT/ncu-$tag.txt" | tr -s ' ' | tr '\n' ' ')"
done
