#!/bin/sh
# Runs one fuzz target for ctest (label `fuzz`).
#
#   run_fuzzer.sh --skip REASON
#       prints why the target was not built and exits 77 (ctest SKIP_RETURN_CODE)
#   run_fuzzer.sh BINARY SEED_DIR WORK_DIR SECONDS
#       runs BINARY (libFuzzer or standalone_driver) for SECONDS on a fresh
#       WORK_DIR/corpus (libFuzzer adds what it finds there, never to the
#       committed SEED_DIR) plus SEED_DIR. A failing input lands in
#       WORK_DIR/artifacts/; the test fails and names it, with the command
#       that replays it and how to keep it as a regression seed.
set -eu

if [ "${1:-}" = "--skip" ]; then
  echo "SKIPPED: ${2:-no reason given}"
  exit 77
fi
if [ $# -ne 4 ]; then
  echo "usage: $0 BINARY SEED_DIR WORK_DIR SECONDS | --skip REASON" >&2
  exit 2
fi
bin=$1 seeds=$2 work=$3 seconds=$4
if [ ! -x "$bin" ]; then
  echo "FAILED: $bin was not built (cmake --build . --target ${bin##*/})" >&2
  exit 1
fi
rm -rf "$work/corpus" "$work/artifacts"
mkdir -p "$work/corpus" "$work/artifacts"
# Stop at the first report; keep LeakSanitizer on (a leak per input adds up).
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
echo "+ $bin -max_total_time=$seconds -rss_limit_mb=1024 -timeout=10 -artifact_prefix=$work/artifacts/ $work/corpus $seeds"
rc=0
"$bin" -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" || rc=$?
if [ "$rc" -ne 0 ]; then
  for f in "$work"/artifacts/*; do
    [ -f "$f" ] || continue
    echo "FAILED: input kept in $f ($(wc -c <"$f") bytes); first bytes:"
    od -A d -c "$f" | head -8
    echo "replay: $bin $f"
    echo "once fixed, keep it as a regression seed: cp $f $seeds/regression-<what>"
  done
  exit "$rc"
fi
