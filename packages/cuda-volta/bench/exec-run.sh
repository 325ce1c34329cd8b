#!/usr/bin/env bash
# One device call for the execution contract (issue in progress): the executor's tests and the
# whole cuda suite, memcheck over the executor's ops, then the executor benchmark with its
# PyTorch matmul anchor in the same call. Run from the project root after
#   source .device-carry/env.sh
# Results under $OUT: test.log, sanity.log, exec.json, exec-bench.log, matmul.json, matmul.log.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
root=$(pwd)
cd packages/cuda-volta
t0=$(date +%s)
(cd "$root" && timeout 300 node_modules/.bin/vitest run --project cuda 2>&1) > "$OUT/test.log"; trc=$?
echo "tests rc=$trc in $(( $(date +%s) - t0 )) s: $(grep -E 'Tests|Test Files' "$OUT/test.log" | tr '\n' ' ')"
t0=$(date +%s)
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 node bench/exec-sanity.mjs > "$OUT/sanity.log" 2>&1
echo "memcheck rc=$? in $(( $(date +%s) - t0 )) s: $(grep -E 'conformance|paged|ERROR SUMMARY' "$OUT/sanity.log" | tr '\n' ' ')"
FASTATTN_BENCH_OUT=$OUT/exec.json timeout 200 node bench/exec.mjs "$@" 2>&1 | tee "$OUT/exec-bench.log"
if [[ " $* " != *" --skip-gemm "* ]]; then
  PYTHONUNBUFFERED=1 timeout 120 python3 ../../tools/anchors/matmul_cuda.py "$OUT/matmul.json" 2>&1 | tee "$OUT/matmul.log"
fi
grep -E "×|FAIL" "$OUT/test.log" | head -20
