#!/bin/sh
# Grows the committed seed corpora (tests/fuzz/corpus/<target>/) by running
# the libFuzzer targets of a build tree for longer than CI does, then merging
# into the corpus only the inputs that reach code the corpus does not yet
# reach (libFuzzer's -merge=1). Seeds already there are kept as they are.
#
#   tests/fuzz/grow_corpus.sh BUILD_DIR [SECONDS_PER_TARGET] [TARGET...]
#
# BUILD_DIR: a tree configured with clang available (not a TIERSWAP_SANITIZE
# tree: that one builds the standalone driver, which cannot merge).
# SECONDS_PER_TARGET: default 3600. TARGET: config journal status proc
# nbd_request nbd_handshake nbd_server (default: all).
# Working corpora stay in BUILD_DIR/tests/fuzz/grow/<target>/ between runs,
# so a second run continues where the first stopped. A crash stops that
# target and leaves the input in BUILD_DIR/tests/fuzz/grow/<target>/artifacts/;
# once the bug is fixed, copy it into the corpus as regression-<what>.
set -eu
if [ $# -lt 1 ]; then
  sed -n '2,17p' "$0" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=${2:-3600}
shift
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
targets=${*:-config journal status proc nbd_request nbd_handshake nbd_server}
jobs=$(nproc)
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for t in $targets; do
  bin=$build/tests/fuzz/fuzz_$t
  seeds=$here/corpus/$t
  work=$build/tests/fuzz/grow/$t
  if [ ! -x "$bin" ]; then
    echo "grow_corpus: $bin is missing (cmake --build $build --target fuzz_$t)" >&2
    exit 1
  fi
  if ! grep -q LLVMFuzzerRunDriver "$bin"; then
    echo "grow_corpus: $bin is the standalone driver, not libFuzzer: configure a tree with clang" >&2
    exit 1
  fi
  mkdir -p "$work/corpus" "$work/artifacts" "$seeds"
  before=$(ls "$seeds" | wc -l)
  echo "== $t: $seconds s, $jobs jobs"
  rc=0
  (cd "$work" && "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -jobs="$jobs" -workers="$jobs" -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" \
    >"$work/run.log" 2>&1) || rc=$?
  tail -n 12 "$work/run.log"
  if [ "$rc" -ne 0 ] || [ -n "$(ls "$work/artifacts")" ]; then
    echo "grow_corpus: $t found a failure: $(ls "$work/artifacts" | tr '\n' ' ')(in $work/artifacts)" >&2
    status=1
    continue
  fi
  "$bin" -merge=1 -rss_limit_mb=2048 -timeout=10 "$seeds" "$work/corpus" >"$work/merge.log" 2>&1
  echo "== $t: corpus $before -> $(ls "$seeds" | wc -l) inputs"
done
exit "$status"
