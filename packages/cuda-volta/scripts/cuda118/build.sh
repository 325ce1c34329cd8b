#!/usr/bin/env bash
# The volta path for a real V100: sm_70 SASS plus compute_70 PTX, which CUDA 13 can no longer emit.
# Needs CUDA <= 12.x; tested with Debian bookworm's non-free `nvidia-cuda-toolkit` (11.8):
#   sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' /etc/apt/sources.list.d/debian.sources
#   apt-get update && apt-get install -y --no-install-recommends nvidia-cuda-toolkit   # nvcc, ptxas, cuobjdump in /usr/bin, g++-11
# Usage: packages/cuda-volta/scripts/cuda118/build.sh [OUT_DIR]   (default packages/cuda-volta/build/cuda118)
# Writes volta_sm70.fatbin (every volta kernel, sm_70 SASS + compute_70 PTX), volta_compute70.ptx,
# combine_sm70.fatbin, resources.txt (ptxas -v, cuobjdump -res-usage, HMMA.884 count per kernel), and
# kernels/, a kernel directory the runtime loads as it is: createBackend({ path: 'volta', kernelDir:
# '<OUT>/kernels' }) (on a newer GPU the driver JIT-compiles the compute_70 PTX).
# CI may leave this out: the addon's CUDA 13 build covers sm_75+ (the volta path included, as PTX
# compiled for compute_75 and newer); this adds the sm_70 binaries for V100 users.
set -euo pipefail
PKG=$(cd "$(dirname "$0")/../.." && pwd)
K=$PKG/kernels
OUT=${1:-$PKG/build/cuda118}
NVCC=${NVCC118:-/usr/bin/nvcc}
# Debian's nvcc wrapper picks g++-11 from /usr/lib/nvidia-cuda-toolkit/bin; /usr/bin must come before
# any CUDA 13 install on PATH, or nvcc 11.8 finds CUDA 13's ptxas (which rejects sm_70).
export PATH=/usr/lib/nvidia-cuda-toolkit/bin:/usr/bin:/bin
"$NVCC" --version | grep -q "release 1[01]\.\|release 12\." || { echo "need nvcc 11.x or 12.x at $NVCC" >&2; exit 1; }
mkdir -p "$OUT"
TU=$OUT/volta_all.cu
: > "$TU"
for hd in 64 80 96 128 256; do echo "#include \"$K/volta/fwd_hd$hd.cu\"" >> "$TU"; done
FLAGS="-O3 -std=c++17"
"$NVCC" $FLAGS -gencode arch=compute_70,code=sm_70 -gencode arch=compute_70,code=compute_70 -Xptxas -v \
  -fatbin -o "$OUT/volta_sm70.fatbin" "$TU" 2> "$OUT/ptxas.log"
"$NVCC" $FLAGS -arch=compute_70 -ptx -o "$OUT/volta_compute70.ptx" "$TU"
"$NVCC" $FLAGS -gencode arch=compute_70,code=sm_70 -gencode arch=compute_70,code=compute_70 -fatbin \
  -o "$OUT/combine_sm70.fatbin" "$K/common/combine.cu"

# The runtime's layout: one module per head dim, the combine kernel, and a manifest.
mkdir -p "$OUT/kernels/volta" "$OUT/kernels/common"
GENCODE70="-gencode arch=compute_70,code=sm_70 -gencode arch=compute_70,code=compute_70"
for hd in 64 80 96 128 256; do
  "$NVCC" $FLAGS $GENCODE70 -fatbin -o "$OUT/kernels/volta/fwd_hd$hd.fatbin" "$K/volta/fwd_hd$hd.cu" &
done
cp "$OUT/combine_sm70.fatbin" "$OUT/kernels/common/combine.fatbin"
# The executor's op and sampling kernels (path-independent, like the combine kernel).
for op in ops sample; do
  "$NVCC" $FLAGS $GENCODE70 -fatbin -o "$OUT/kernels/common/$op.fatbin" "$K/common/$op.cu" &
done
wait
echo '{"nvcc":"11.8","paths":{"volta":{"sm":[70],"ptx":70}},"common":{"sm":[70],"ptx":70}}' > "$OUT/kernels/manifest.json"

# Evidence from the SASS (no GPU needed): registers, spills, shared memory, HMMA.884 per kernel.
{
  echo "nvcc: $("$NVCC" --version | tail -1)"
  printf '%-40s %5s %6s %6s %9s %9s %s\n' kernel regs stack spill smem_dyn hmma884 ldl/stl
  for name in $(grep -o "Compiling entry function '[a-z0-9_]*'" "$OUT/ptxas.log" | cut -d"'" -f2); do
    line=$(grep -A3 "'$name'" "$OUT/ptxas.log" | tr '\n' ' ')
    regs=$(echo "$line" | grep -o "Used [0-9]* registers" | grep -o "[0-9]*")
    stack=$(echo "$line" | grep -o "[0-9]* bytes stack frame" | grep -o "^[0-9]*")
    spill=$(echo "$line" | grep -o "[0-9]* bytes spill stores" | grep -o "^[0-9]*")
    cfg=$(echo "$name" | sed -E 's/_paged$//; s/.*_hd([0-9]+)_([0-9]+)x([0-9]+)w([0-9]+)s([0-9]+)$/\1 \2 \3 \4 \5/')
    smem=$(printf '#include "%s"\nFA_VOLTA_SMEM(%s)\n' "$K/volta/configs.h" "$(echo $cfg | tr ' ' ',')" | cpp -P - | tail -1)
    sass=$(cuobjdump -sass -fun "$name" "$OUT/volta_sm70.fatbin")
    hmma=$(echo "$sass" | grep -c "HMMA.884" || true)
    local_mem=$(echo "$sass" | grep -cE "\b(LDL|STL)\b" || true)
    printf '%-40s %5s %6s %6s %9s %9s %s\n' "$name" "$regs" "$stack" "$spill" "$(( smem ))" "$hmma" "$local_mem"
  done
  echo
  echo "# cuobjdump -res-usage"
  cuobjdump -res-usage "$OUT/volta_sm70.fatbin" | grep -E "Function|REG"
  echo
  echo "# instruction kinds in the sm_70 SASS (all kernels)"
  cuobjdump -sass "$OUT/volta_sm70.fatbin" | grep -oE "(HMMA\.[0-9A-Z.]+|LDS\.[0-9A-Z.]*|LDS |STS\.[0-9A-Z.]*|LDSM[.A-Z0-9]*|LDGSTS[.A-Z0-9]*|LDL[.A-Z0-9]*|STL[.A-Z0-9]*)" | sort | uniq -c
} > "$OUT/resources.txt"
cat "$OUT/resources.txt"
