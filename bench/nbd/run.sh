#!/usr/bin/env bash
# NBD exporter benchmark: tierswap-nbd against nbdkit `memory` (the RAM-backed
# peer) and nbdkit `null` (the ceiling of NBD over a Unix socket), driven by
# the same client (bench/nbd/nbd_load.cpp) in the same run. Prints a
# Markdown table with IOPS, MB/s, p50/p99 and the ratios.
#
#   bench/nbd/run.sh [--store host|cuda] [--size 1G] [--seconds 3] [--cpu-cases|--no-cpu-cases]
#                    [--device N|UUID] [--cases LIST]
#
# Binaries come from the environment, so that the harness runs where tools
# and libraries sit in a folder (LD_LIBRARY_PATH) rather than installed:
#   TIERSWAP_NBD=path/to/tierswap-nbd   (default: build/bin, then build-nbd/bin)
#   NBD_LOAD=path/to/nbd-load           (default: next to tierswap-nbd)
#   NBDKIT=path/to/nbdkit               (default: nbdkit in PATH)
#   NBDKIT_PLUGINDIR=dir                (holds nbdkit-memory-plugin.so, nbdkit-null-plugin.so;
#                                        default: nbdkit's own plugin directory)
#   NBDKIT_THREADS=N                    (default: 16, nbdkit's default)
#   TIERSWAP_NBD_ARGS="..."             (extra exporter arguments, e.g. --no-mlock)
#   NBD_LOAD_ARGS="..."                 (extra client arguments for every server, e.g. --sndbuf 4M)
#   EXTRA_CASES="name|conns|qd|bs|pattern ..."  (more cases, space-separated,
#                                        e.g. "seqw1m-16x8|16|8|1m|seqwrite")
# After the table, the CPU each server used during each case (cores: its
# user+system time over the run's wall time) and the machine's busy cores,
# so that a ratio can be read against what it cost.
set -euo pipefail

store=host size=1G seconds=3 device="" cases="" cpu_cases=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --store) store=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --cpu-cases) cpu_cases=yes; shift ;;
    --no-cpu-cases) cpu_cases=no; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${TIERSWAP_NBD:-}" ]; then
  for c in "$root/build/bin/tierswap-nbd" "$root/build-nbd/bin/tierswap-nbd"; do
    [ -x "$c" ] && { TIERSWAP_NBD=$c; break; }
  done
fi
[ -x "${TIERSWAP_NBD:-}" ] || { echo "run.sh: set TIERSWAP_NBD=path/to/tierswap-nbd" >&2; exit 2; }
NBD_LOAD=${NBD_LOAD:-$(dirname "$TIERSWAP_NBD")/nbd-load}
[ -x "$NBD_LOAD" ] || { echo "run.sh: set NBD_LOAD=path/to/nbd-load (built from bench/nbd/nbd_load.cpp)" >&2; exit 2; }
NBDKIT=${NBDKIT:-nbdkit}
command -v "$NBDKIT" >/dev/null || { echo "run.sh: nbdkit not found (set NBDKIT=)" >&2; exit 2; }
NBDKIT_THREADS=${NBDKIT_THREADS:-16}
plugin() {  # name -> what to pass to nbdkit
  if [ -n "${NBDKIT_PLUGINDIR:-}" ]; then echo "$NBDKIT_PLUGINDIR/nbdkit-$1-plugin.so"; else echo "$1"; fi
}
ncpu=$(nproc)
[ "$cpu_cases" = auto ] && { [ "$ncpu" -le 4 ] && cpu_cases=yes || cpu_cases=no; }

work=$(mktemp -d /tmp/tierswap-bench.XXXXXX)
chmod 700 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_socket() {
  for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "run.sh: no socket at $1" >&2; return 1
}

# name|connections|qd|bs|pattern
all_cases="rr4k-qd1|1|1|4k|randread
rw4k-qd1|1|1|4k|randwrite
mix4k-qd1|1|1|4k|randrw70
rr4k-8x32|8|32|4k|randread
rw4k-8x32|8|32|4k|randwrite
mix4k-8x32|8|32|4k|randrw70
seqr1m-8x8|8|8|1m|seqread
seqw1m-8x8|8|8|1m|seqwrite"
if [ "$cpu_cases" = yes ]; then
  all_cases="$all_cases
mix4k-1x32|1|32|4k|randrw70
mix4k-2x32|2|32|4k|randrw70
rr4k-2x32|2|32|4k|randread"
fi
for extra in ${EXTRA_CASES:-}; do all_cases="$all_cases
$extra"; done
if [ -n "$cases" ]; then
  all_cases=$(echo "$all_cases" | grep -E "^($(echo "$cases" | tr ',' '|'))\|")
fi

# --- start the three servers --------------------------------------------
ts_sock=$work/tierswap.sock mem_sock=$work/memory.sock null_sock=$work/null.sock
ts_args=(--socket "$ts_sock" --size "$size" --store "$store" --connections 16 --force)
[ -n "$device" ] && ts_args+=(--device "$device")
# shellcheck disable=SC2206
ts_args+=(${TIERSWAP_NBD_ARGS:-})
"$TIERSWAP_NBD" "${ts_args[@]}" >"$work/tierswap.log" 2>&1 &
ts_pid=$!; pids+=("$ts_pid")
wait_socket "$ts_sock" || { cat "$work/tierswap.log" >&2; exit 1; }
"$NBDKIT" -U "$mem_sock" --exit-with-parent -f -t "$NBDKIT_THREADS" "$(plugin memory)" size="$size" >"$work/memory.log" 2>&1 &
mem_pid=$!; pids+=("$mem_pid")
"$NBDKIT" -U "$null_sock" --exit-with-parent -f -t "$NBDKIT_THREADS" "$(plugin null)" size="$size" >"$work/null.log" 2>&1 &
null_pid=$!; pids+=("$null_pid")
wait_socket "$mem_sock" && wait_socket "$null_sock"

uri() { echo "nbd+unix:///?socket=$1"; }
# Both RAM-backed exports fully written first, so that reads are real reads.
"$NBD_LOAD" --uri "$(uri "$ts_sock")" --prefill --seconds 0.01 >/dev/null
"$NBD_LOAD" --uri "$(uri "$mem_sock")" --prefill --seconds 0.01 >/dev/null

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# user+system clock ticks of a process; the machine's busy and total ticks.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
hz=$(getconf CLK_TCK)
cpu_lines=()
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "tierswap-nbd --store $store vs nbdkit memory / null (-t $NBDKIT_THREADS), size $size, ${seconds}s per run, $(date -u +%FT%TZ), $(uname -n), $ncpu CPUs"
echo
echo "| case | tierswap IOPS | MB/s | p50 µs | p99 µs | memory IOPS | p50 | p99 | null IOPS | p50 | p99 | IOPS ×memory | IOPS ×null | p50 ×null |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
while IFS='|' read -r name conns qd bs pattern; do
  [ -z "$name" ] && continue
  line="| $name"
  declare -A res=()
  cpu_line="| $name"
  for srv in tierswap memory null; do
    sock_var=${srv/tierswap/ts}_sock; [ "$srv" = memory ] && sock_var=mem_sock
    case $srv in tierswap) spid=$ts_pid ;; memory) spid=$mem_pid ;; null) spid=$null_pid ;; esac
    p0=$(proc_ticks "$spid"); read -r b0 t0 < <(machine_ticks); w0=$(date +%s.%N)
    out=$("$NBD_LOAD" --uri "$(uri "${!sock_var}")" --connections "$conns" --qd "$qd" --bs "$bs" \
      --pattern "$pattern" --seconds "$seconds" ${NBD_LOAD_ARGS:-}) || { echo "run.sh: $srv $name failed: $out" >&2; out="iops=0 mbps=0 p50_us=0 p99_us=0"; }
    p1=$(proc_ticks "$spid"); read -r b1 t1 < <(machine_ticks); w1=$(date +%s.%N)
    cpu_line="$cpu_line | $(awk -v p="$((p1 - p0))" -v hz="$hz" -v w0="$w0" -v w1="$w1" 'BEGIN { printf "%.1f", p / hz / (w1 - w0) }')"
    cpu_line="$cpu_line | $(awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" -v n="$ncpu" 'BEGIN { if (t > 0) printf "%.1f", n * b / t; else print "-" }')"
    res[$srv.iops]=$(field "$out" iops); res[$srv.mbps]=$(field "$out" mbps)
    res[$srv.p50]=$(field "$out" p50_us); res[$srv.p99]=$(field "$out" p99_us)
  done
  line="$line | ${res[tierswap.iops]} | ${res[tierswap.mbps]} | ${res[tierswap.p50]} | ${res[tierswap.p99]}"
  line="$line | ${res[memory.iops]} | ${res[memory.p50]} | ${res[memory.p99]}"
  line="$line | ${res[null.iops]} | ${res[null.p50]} | ${res[null.p99]}"
  line="$line | $(ratio "${res[tierswap.iops]}" "${res[memory.iops]}") | $(ratio "${res[tierswap.iops]}" "${res[null.iops]}")"
  line="$line | $(ratio "${res[tierswap.p50]}" "${res[null.p50]}") |"
  echo "$line"
  cpu_lines+=("$cpu_line |")
  unset res
done <<<"$all_cases"

echo
echo "CPU during each case: the server's cores (user+system time / wall time) and the machine's busy cores (of $ncpu), client included"
echo
echo "| case | tierswap cores | machine | memory cores | machine | null cores | machine |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${cpu_lines[@]}"

rss_kb=$(ps -o rss= -p "$ts_pid" | tr -d ' ')
size_kb=$(awk -v s="$size" 'BEGIN { n = s + 0; u = substr(s, length(s)); if (u == "G" || u == "g") n *= 1048576; else if (u == "M" || u == "m") n *= 1024; else if (u == "K" || u == "k") n *= 1; else n /= 1024; print int(n) }')
echo
if [ "$store" = host ]; then
  echo "tierswap-nbd RSS: $((rss_kb / 1024)) MiB; beyond the ${size} export: $(((rss_kb - size_kb) / 1024)) MiB"
else
  echo "tierswap-nbd RSS: $((rss_kb / 1024)) MiB (export in VRAM; pinned staging included)"
fi
grep -E "warn|error" "$work/tierswap.log" | sed 's/^/exporter log: /' || true
