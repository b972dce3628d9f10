#!/bin/bash
# On the GPU machine, from the repository root, over what bench/gpu/package.sh
# put in CARRY (default .carry/gpu):
#   bench/gpu/run-device.sh [CARRY] [store|all|e2e|final|evac|daemon|contention]
#   contention: the daemon's policy on real NVML signals while vram_hog takes
#          the GPU's memory (vram_daemon_test Gpu/VramContention,
#          CONTENTION_REPEAT times, default 3), then the evacuation
#          benchmark's lz4 spill at the exporter's defaults (movers: half the
#          CPUs, 2 to 8; 256 KiB slices), cold and warm, and cold with the
#          earlier figures' 8 movers and 4 MiB slices (SKIP_EVAC=1: not)
#   daemon: only the daemon's VRAM tier on a fake root (vram_daemon_test,
#          store cuda and host; package.sh with DAEMON_BUILD), VRAM in use
#          before and after
#   store: gpu tests, then the store microbenchmark (tierswap-gpu-bench) and
#          the evacuation benchmark (tierswap-evac-bench --store cuda)
#   all:   store, then compute-sanitizer memcheck over a few tests
#   e2e:   store, then bench/nbd/run.sh --store cuda against nbdkit null and
#          memory: defaults, then the server submitting inline
#          (TIERSWAP_CUDA_TUNING=batching=0), then without the poller
#   final: store, then the cases for bench/results/nbd-gpu.md: defaults, the
#          server's batcher, --buffer 8M for 1 MiB, and --store host
#   write1m: gpu tests (SKIP_TESTS=1: not), then 1 MiB sequential writes and
#          reads (8x8, and 2x8 / 16x8 for how they scale with connections) and
#          4 KiB cases, with each server's CPU, in variants: the defaults,
#          --pipeline off, completions waited on yielding (spin=0), and
#          --store host (W1M_ROUNDS
#          rounds, default 2)
#   evac:  gpu tests, then the evacuation benchmark as in store (8 movers,
#          lz4 and file) and with more movers and lz4 acceleration
#          (EVAC_MOVERS, default 14), no store microbenchmark
# Logs go to $OUT (the device tool brings them back), the tables last.
set -u
C=${1:-.carry/gpu}
WHAT=${2:-store}
OUT=${OUT:-/tmp/out}
SECONDS_PER_CASE=${SECONDS_PER_CASE:-2}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$C/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv,noheader | tee "$OUT/gpu.txt"
if [ "$WHAT" = contention ]; then
  echo "== NVML: $(ldconfig -p | grep -o 'libnvidia-ml.so.1 .*' | head -1)"
  echo "== vram_daemon_test Gpu/VramContention x ${CONTENTION_REPEAT:-3}"
  TIERSWAP_TEST_BIN_DIR="$PWD/$C/bin" TIERSWAP_FIXTURES_DIR="$PWD/tests/fixtures" \
    timeout 400 "$C/bin/vram_daemon_test" --gtest_filter='Gpu/VramContention.*' \
    --gtest_repeat="${CONTENTION_REPEAT:-3}" > "$OUT/contention.log" 2>&1
  echo "vram_daemon_test rc=$?"
  grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED|RUN) |Failure|contention:|Expected|Actual|Which is|failed at_ns' "$OUT/contention.log"
  grep -E '^daemon: ' "$OUT/contention.log" | grep -E 'evacuat|promot' | cut -c1-400 | head -12
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader
  pgrep -a tierswap || echo "no tierswap process left"
  [ -n "${SKIP_EVAC:-}" ] && exit 0
  echo "== evacuation benchmark, lz4, cold then warm (the exporter's defaults)"
  timeout 150 "$C/bin/tierswap-evac-bench" --store cuda --size $((4 << 30)) --threads 4 --spill lz4 \
    > "$OUT/evac-cold.md" 2>&1; echo "evac bench cold rc=$?"
  timeout 150 "$C/bin/tierswap-evac-bench" --store cuda --size $((4 << 30)) --threads 4 --warm-rounds 1 --spill lz4 \
    > "$OUT/evac-warm.md" 2>&1; echo "evac bench warm rc=$?"
  timeout 150 "$C/bin/tierswap-evac-bench" --store cuda --size $((4 << 30)) --threads 4 --movers 8 --slice 4M \
    --spill lz4 > "$OUT/evac-cold-8.md" 2>&1; echo "evac bench cold 8 movers rc=$?"
  for f in evac-cold evac-warm evac-cold-8; do echo "== $f"; grep -vE '^\[20|^$' "$OUT/$f.md"; done
  exit 0
fi
if [ "$WHAT" = write1m ]; then
  export TIERSWAP_NBD="$PWD/$C/bin/tierswap-nbd" NBD_LOAD="$PWD/$C/bin/nbd-load"
  export NBDKIT="$PWD/$C/bin/nbdkit" NBDKIT_PLUGINDIR="$PWD/$C/nbdkit-plugins"
  export EXTRA_CASES="seqw1m-2x8|2|8|1m|seqwrite seqw1m-16x8|16|8|1m|seqwrite"
  if [ -z "${SKIP_TESTS:-}" ]; then
    echo "== tierswap_gpu_tests"
    timeout 240 "$C/bin/tierswap_gpu_tests" > "$OUT/gpu-tests.log" 2>&1
    echo "rc=$?"; grep -E '^\[  (PASSED|FAILED) |^\[  FAILED  \]' "$OUT/gpu-tests.log" | head -20
  fi
  w1m() {  # name store cases [env...]
    local name=$1 store=$2 cases=$3; shift 3
    echo "== $name: $* bench/nbd/run.sh --store $store"
    env "$@" timeout 150 bench/nbd/run.sh --store "$store" --size 2G --seconds "$SECONDS_PER_CASE" \
      --cases "$cases" > "$OUT/w1m-$name.md" 2>&1
    echo "rc=$?"
    grep -E '^\| (seq|rr|mix|rw)|TUNING' "$OUT/w1m-$name.md"
  }
  big=seqw1m-8x8,seqr1m-8x8,seqw1m-2x8,seqw1m-16x8
  small=rr4k-qd1,rw4k-qd1,mix4k-8x32
  for round in $(seq "${W1M_ROUNDS:-2}"); do
    echo "### round $round"
    w1m "default-r$round" cuda "$big,$small"
    w1m "pipeoff-r$round" cuda "$big" TIERSWAP_NBD_ARGS="--pipeline off"
    w1m "yield-r$round" cuda "$big" TIERSWAP_CUDA_TUNING=spin=0
    w1m "host-r$round" host "$big"
  done
  exit 0
fi
if [ "$WHAT" = daemon ]; then
  echo "== vram_daemon_test (tierswapd-test, store cuda and host)"
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader | tee "$OUT/apps-before.txt"
  TIERSWAP_TEST_BIN_DIR="$PWD/$C/bin" TIERSWAP_FIXTURES_DIR="$PWD/tests/fixtures" \
    timeout 240 "$C/bin/vram_daemon_test" > "$OUT/vram-daemon.log" 2>&1
  echo "vram_daemon_test rc=$?"
  grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED|RUN) |Failure|vram:|blocks written|Expected|Actual|Which is' "$OUT/vram-daemon.log"
  echo "== after"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader
  pgrep -a tierswap || echo "no tierswap process left"
  exit 0
fi
echo "== gpu tests"
timeout 260 "$C/bin/tierswap_gpu_tests" > "$OUT/gpu-tests.log" 2>&1
echo "gpu tests rc=$?"
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED|report:|WATCHDOG|GB/s|^\[       OK|^\[ RUN' "$OUT/gpu-tests.log" | head -60
if [ "$WHAT" = evac ]; then
  echo "== evacuation tests, 5 more times each"
  timeout 120 "$C/bin/tierswap_gpu_tests" --gtest_filter='CudaEvac.*' --gtest_repeat=5 >> "$OUT/gpu-tests.log" 2>&1
  echo "gpu tests (repeat) rc=$?"
  grep -cE '^\[       OK \] CudaEvac' "$OUT/gpu-tests.log"
fi
if [ "$WHAT" != evac ]; then
  echo "== store microbenchmark"
  timeout 200 "$C/bin/tierswap-gpu-bench" --size $((8 << 30)) --seconds 1 > "$OUT/store-bench.log" 2>&1
  echo "store bench rc=$?"
fi
echo "== exporter RSS, idle"
bash "$(dirname "$0")/rss.sh" "$C/bin/tierswap-nbd" | tee "$OUT/rss.txt"
echo "== evacuation benchmark (CudaStore to lz4 and a file spill, and back)"
rm -f /var/tmp/tierswap-evac-bench.spill
timeout 150 "$C/bin/tierswap-evac-bench" --store cuda --size $((4 << 30)) --threads 4 --movers 8 --slice 4M \
  --spill lz4 --spill file:/var/tmp/tierswap-evac-bench.spill > "$OUT/evac-bench.md" 2>&1
echo "evac bench rc=$?"
if [ "$WHAT" = evac ]; then
  eb() { timeout 130 "$C/bin/tierswap-evac-bench" --store cuda --size $((4 << 30)) --threads 4 "$@"; echo "evac bench rc=$?"; }
  echo "== evacuation benchmark, ${EVAC_MOVERS:-14} movers, lz4 and lz4:4"
  eb --movers "${EVAC_MOVERS:-14}" --slice 4M --spill lz4 --spill lz4:4 > "$OUT/evac-bench-movers.md" 2>&1
  echo "== evacuation benchmark after one unmeasured round (the spill's memory touched before)"
  { eb --movers 8 --slice 4M --warm-rounds 1 --spill lz4
    eb --movers "${EVAC_MOVERS:-14}" --slice 4M --warm-rounds 1 --spill lz4 --spill lz4:4; } > "$OUT/evac-bench-warm.md" 2>&1
  echo "== evacuation benchmark, file spill with 2 movers and 1 MiB slices"
  rm -f /var/tmp/tierswap-evac-bench.spill
  eb --movers 2 --slice 1M --spill file:/var/tmp/tierswap-evac-bench.spill > "$OUT/evac-bench-file2.md" 2>&1
  if [ -x bench/nbd/run.sh ] || [ -f bench/nbd/run.sh ]; then
    echo "== bench/nbd/run.sh --store cuda (defaults), a few cases"
    TIERSWAP_NBD="$PWD/$C/bin/tierswap-nbd" NBD_LOAD="$PWD/$C/bin/nbd-load" NBDKIT="$PWD/$C/bin/nbdkit" \
      NBDKIT_PLUGINDIR="$PWD/$C/nbdkit-plugins" timeout 120 bash bench/nbd/run.sh --store cuda --size 2G --seconds 2 \
      --cases rr4k-qd1,mix4k-8x32,seqr1m-8x8,seqw1m-8x8 > "$OUT/e2e-cuda.md" 2>&1
    echo "rc=$?"
  fi
fi
if [ "$WHAT" = all ] && command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck (subset)"
  timeout 120 compute-sanitizer --tool memcheck "$C/bin/tierswap_gpu_tests" \
    --gtest_filter='CudaStore.BatchMixingAllOps:CudaStore.EdgeSizesAndPointers:Paths/CudaStoreRandom.*/no_poller' \
    > "$OUT/sanitizer.log" 2>&1
  echo "sanitizer rc=$?"; grep -E 'ERROR SUMMARY|PASSED|FAILED' "$OUT/sanitizer.log" | head
fi
if [ "$WHAT" = e2e ] || [ "$WHAT" = final ]; then
  export TIERSWAP_NBD="$PWD/$C/bin/tierswap-nbd" NBD_LOAD="$PWD/$C/bin/nbd-load"
  export NBDKIT="$PWD/$C/bin/nbdkit" NBDKIT_PLUGINDIR="$PWD/$C/nbdkit-plugins"
  base=""
  if grep -qE 'FAILED.*(Poller|defaults|Edge|DeathTest)' "$OUT/gpu-tests.log"; then
    base="poller=0,"; echo "poller tests failed: end-to-end runs without the poller"
  fi
  run() {  # tuning outfile [run.sh args]
    local t=$1 f=$2; shift 2
    echo "== bench/nbd/run.sh --store cuda, TIERSWAP_CUDA_TUNING=$t"
    TIERSWAP_CUDA_TUNING=$t TIERSWAP_NBD_ARGS="${TIERSWAP_NBD_ARGS:-}" timeout 170 bench/nbd/run.sh --store cuda --size 2G \
      --seconds "$SECONDS_PER_CASE" "$@" > "$OUT/$f" 2>&1
    echo "rc=$?"
  }
  if [ "$WHAT" = e2e ]; then
    run "${base}batching=1" e2e-default.md
    run "${base}batching=0" e2e-inline.md
    run "poller=0,batching=1" e2e-nopoller.md --cases rr4k-qd1,mix4k-qd1,mix4k-8x32
  else
    # The report's table (defaults), the server's batcher for comparison,
    # 1 MiB cases with room for 8 payloads a connection, and the host store
    # (the server and client's own ceiling on this machine).
    SECONDS_PER_CASE=3 run "${base%,}" e2e-cuda.md
    run "${base}batching=1" e2e-cuda-batcher.md
    TIERSWAP_NBD_ARGS="--buffer 8M" run "${base%,}" e2e-cuda-buf8m.md --cases seqr1m-8x8,seqw1m-8x8
    echo "== bench/nbd/run.sh --store host"
    timeout 120 bench/nbd/run.sh --store host --size 2G --seconds 2 \
      --cases rr4k-qd1,mix4k-qd1,mix4k-8x32,seqr1m-8x8,seqw1m-8x8 > "$OUT/e2e-host.md" 2>&1
    echo "rc=$?"
  fi
fi
if [ -f "$OUT/store-bench.log" ]; then echo "== store microbenchmark (table)"; cat "$OUT/store-bench.log"; fi
echo "== evacuation benchmark (table)"
cat "$OUT/evac-bench.md"
for f in evac-bench-movers evac-bench-warm evac-bench-file2; do
  [ -f "$OUT/$f.md" ] && { echo "== $f (table)"; grep -vE '^\[20|^cuda store:|^lz4 spill in|^file spill|^$' "$OUT/$f.md"; }
done
for f in "$OUT"/e2e-*.md; do [ -f "$f" ] && { echo "== $(basename "$f")"; cat "$f"; }; done
exit 0
