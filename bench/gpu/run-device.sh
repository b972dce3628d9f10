#!/bin/bash
# On the GPU machine, from the repository root, over binaries built here and
# carried in CARRY (default .carry/gpu: bin/ with tierswap_gpu_tests and
# tierswap-gpu-bench; lib/ with shared libraries the machine lacks):
#   bench/gpu/run-device.sh [CARRY] [store|all]
# Logs go to $OUT (the device tool brings them back), a short table last.
set -u
C=${1:-.carry/gpu}
WHAT=${2:-store}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$C/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv,noheader | tee "$OUT/gpu.txt"
echo "== gpu tests"
timeout 300 "$C/bin/tierswap_gpu_tests" 2>&1 > "$OUT/gpu-tests.log"
echo "gpu tests rc=$?"
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED|report:' "$OUT/gpu-tests.log" | head -30
echo "== store microbenchmark"
timeout 240 "$C/bin/tierswap-gpu-bench" --size $((8 << 30)) --seconds 1.5 2>&1 | tee "$OUT/store-bench.log"
if [ "$WHAT" = all ] && command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck (subset)"
  timeout 120 compute-sanitizer --tool memcheck "$C/bin/tierswap_gpu_tests" \
    --gtest_filter='CudaStore.BatchMixingAllOps:CudaStore.EdgeSizesAndPointers:Paths/CudaStoreRandom.*/no_poller' \
    > "$OUT/sanitizer.log" 2>&1
  echo "sanitizer rc=$?"; grep -E 'ERROR SUMMARY|PASSED|FAILED' "$OUT/sanitizer.log" | head
fi
