#!/usr/bin/env bash
# Builds everything the standalone volta/turing check needs into $OUT_DIR (default .volta-carry/),
# on a machine without a GPU: nvcc 13 fatbins of both paths (sm_90 SASS + compute_75 PTX), the
# plain-layout variant of the volta path (bank-conflict comparison), A's combine kernel, the CUDA
# 11.8 compute_70 PTX of the volta path (JIT-loaded on the H100), and the host harness.
#   packages/cuda-volta/check/build.sh [OUT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
K=$ROOT/packages/cuda-volta/kernels
OUT_DIR=${1:-$ROOT/.volta-carry}
mkdir -p "$OUT_DIR"
NVCC13=${NVCC13:-/usr/local/cuda/bin/nvcc}
GEN13="-gencode arch=compute_90,code=sm_90 -gencode arch=compute_75,code=compute_75"
FLAGS="-O3 -std=c++17 -lineinfo"

all_tu() {  # one translation unit with every head dim of a path
  local path=$1 f=$OUT_DIR/all_$1.cu
  : > "$f"
  for hd in 64 80 96 128 256; do echo "#include \"$K/$path/fwd_hd$hd.cu\"" >> "$f"; done
  echo "$f"
}
VTU=$(all_tu volta)
TTU=$(all_tu turing)
"$NVCC13" $FLAGS $GEN13 -fatbin -o "$OUT_DIR/volta_cuda13.fatbin" "$VTU" &
"$NVCC13" $FLAGS $GEN13 -fatbin -o "$OUT_DIR/turing_cuda13.fatbin" "$TTU" &
printf '#include "%s"\n#include "%s"\n' "$K/volta/fwd_hd64.cu" "$K/volta/fwd_hd128.cu" > "$OUT_DIR/plain_volta.cu"
"$NVCC13" $FLAGS -gencode arch=compute_90,code=sm_90 -DFA_VOLTA_PLAIN_LAYOUT=1 -fatbin \
  -o "$OUT_DIR/volta_plain_cuda13.fatbin" "$OUT_DIR/plain_volta.cu" &
"$NVCC13" $FLAGS -gencode arch=compute_90,code=sm_90 -fatbin -o "$OUT_DIR/combine_cuda13.fatbin" "$K/common/combine.cu" &
wait
# CUDA 11.8 (Debian bookworm non-free nvidia-cuda-toolkit): compute_70 PTX of the volta path.
if [ -x /usr/bin/nvcc ] && /usr/bin/nvcc --version | grep -q "release 11"; then
  PATH=/usr/lib/nvidia-cuda-toolkit/bin:/usr/bin:/bin /usr/bin/nvcc $FLAGS -arch=compute_70 -ptx \
    -o "$OUT_DIR/volta_cuda118_compute70.ptx" "$VTU"
fi
g++ -O2 -std=c++17 -I/usr/local/cuda/include -o "$OUT_DIR/check" "$ROOT/packages/cuda-volta/check/check.cpp" \
  -L/usr/lib/x86_64-linux-gnu/stubs -lcuda -lpthread
ls -la "$OUT_DIR"
