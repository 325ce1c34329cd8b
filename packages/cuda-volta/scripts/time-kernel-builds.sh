#!/usr/bin/env bash
# Kernel build cost per architecture on 2 CPUs: the same nvcc commands as packages/cuda-volta/CMakeLists.txt,
# each architecture pinned to its own pair of CPUs (taskset), 2 nvcc at a time (as ninja -j2 on a 2-core machine).
set -u
OUTD=${1:-/tmp/arch-times}; mkdir -p "$OUTD"
K=packages/cuda-volta/kernels
FLAGS="-fatbin -O3 -std=c++17 -lineinfo"
job() {
  local name=$1 cores=$2 arch=$3; shift 3
  local d=$OUTD/$name; mkdir -p "$d"; local report=""
  local t0=$(date +%s%N)
  for p in "$@"; do
    local gen
    if [ "$p" = hopper ]; then gen="-gencode arch=compute_90a,code=sm_90a"; else gen="-gencode arch=compute_$arch,code=sm_$arch -gencode arch=compute_$arch,code=compute_$arch"; fi
    local srcs; if [ "$p" = common ]; then srcs=$K/common/combine.cu; else srcs=$(ls $K/$p/*.cu); fi
    local p0=$(date +%s%N)
    for s in $srcs; do echo "nvcc $FLAGS $gen -o $d/${p}_$(basename $s .cu).fatbin $s"; done > "$d/cmds_$p"
    taskset -c "$cores" xargs -P2 -I{} sh -c {} < "$d/cmds_$p" 2> "$d/err_$p" || echo "$name $p FAILED: $(head -3 $d/err_$p)"
    local p1=$(date +%s%N)
    report="$report $p=$(( (p1 - p0) / 1000000000 ))s/$(cat $d/${p}_*.fatbin 2>/dev/null | wc -c | awk '{printf "%.1fMB", $1/1e6}')"
  done
  local t1=$(date +%s%N)
  echo "$name total $(( (t1 - t0) / 1000000000 )) s:$report"
}
job sm75 0,1 75 turing common &
job sm80 2,3 80 ampere common &
job sm86 4,5 86 ampere common &
job sm89 6,7 89 ampere common &
job sm90 8,9 90 hopper ampere common &
job sm100 10,11 100 ampere common &
job sm120 12,13 120 ampere common &
job sm90-all-paths 14,15 90 volta turing ampere hopper common &
wait
