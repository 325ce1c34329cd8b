#!/usr/bin/env bash
# On the GPU machine (device tool), after packages/cuda-volta/check/build.sh here, with carry [".volta-carry"]:
#   bash packages/cuda-volta/check/run-device.sh     (writes $OUT/volta-*.txt)
C=.volta-carry
OUT=${OUT:-/tmp/volta-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/volta-device.txt"
# 1. Correctness: CUDA 13 fatbins of both paths, and the CUDA 11.8 compute_70 PTX JIT-compiled by the driver.
$C/check suite $C/combine_cuda13.fatbin volta-c13=$C/volta_cuda13.fatbin turing-c13=$C/turing_cuda13.fatbin \
  volta-c118ptx=$C/volta_cuda118_compute70.ptx > "$OUT/volta-correctness.txt" 2>&1
echo "suite rc=$?" >> "$OUT/volta-correctness.txt"
grep -E "FAIL|SUMMARY|rc=" "$OUT/volta-correctness.txt" | tail -25
# 2. Shared-memory bank conflicts: designed layout vs plain row-major (same kernel, FA_VOLTA_PLAIN_LAYOUT=1).
M=l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum,smsp__sass_inst_executed_op_shared_ld.sum,smsp__sass_inst_executed_op_shared_st.sum
for hd in 64 128; do
  for v in volta_cuda13 volta_plain_cuda13; do
    echo "=== $v hd$hd" >> "$OUT/volta-ncu.txt"
    timeout 120 ncu --clock-control none --metrics $M -k regex:fa_volta_prefill_f16 $C/check profile $C/$v.fatbin volta 1024 $hd \
      >> "$OUT/volta-ncu.txt" 2>&1
  done
done
grep -E "===|bank_conflicts|wavefronts|inst_executed" "$OUT/volta-ncu.txt"
# 3. Timing, for the record only (an H100 says nothing about a V100 or a T4).
$C/check time volta-c13=$C/volta_cuda13.fatbin turing-c13=$C/turing_cuda13.fatbin > "$OUT/volta-timing.txt" 2>&1
cat "$OUT/volta-timing.txt"
