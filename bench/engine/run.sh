#!/usr/bin/env bash
# Engine benchmark (root): `tierswapctl plan` wall time, no-op reapply on
# SIGHUP, tierswapd RSS once applied and idle, idle CPU over 30 s.
# Usage: bench/engine/run.sh [BUILD_DIR] [IDLE_SECONDS]   (default build, 30)
# Prints a Markdown table; leaves the machine as it found it (SIGTERM undo).
set -euo pipefail
BUILD=${1:-build}
IDLE=${2:-30}
BIN=$BUILD/bin
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
[ ! -e /run/tierswap/state.json ] || { echo "/run/tierswap/state.json exists: a tierswapd runs here" >&2; exit 2; }
tmp=$(mktemp -d /var/tmp/tierswap-bench-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
cat > "$tmp/tierswap.yaml" <<YAML
tiers:
  - name: bench-zram
    kind: zram
    size: 256M
    algorithm: [zstd, lz4, lzo-rle]
    priority: 100
  - name: bench-file
    kind: file
    path: $tmp/bench.swap
    size: 64M
    priority: 10
sysctl:
  vm.swappiness: 150
  vm.page-cluster: 0
YAML
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now_ms() { date +%s%3N; }

# 1. tierswapctl plan wall time (20 runs, median).
for _ in $(seq 20); do
  t0=$(date +%s%N); "$BIN/tierswapctl" plan "$tmp/tierswap.yaml" >/dev/null; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))
done | median > "$tmp/plan_us"

# 2. tierswapd: apply, then no-op SIGHUPs.
# TIERSWAPD_ARGS: e.g. "--bus-address unix:path=..." to measure with D-Bus served.
"$BIN/tierswapd" --config "$tmp/tierswap.yaml" ${TIERSWAPD_ARGS:-} 2> "$tmp/log" &
pid=$!
for _ in $(seq 200); do grep -q 'applied' "$tmp/log" && break; sleep 0.05; done
grep -q 'applied' "$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
for i in $(seq 10); do
  n=$(grep -c 'reload: nothing to do' "$tmp/log" || true)
  t0=$(now_ms); kill -HUP "$pid"
  while [ "$(grep -c 'reload: nothing to do' "$tmp/log" || true)" -le "$n" ]; do sleep 0.002; done
  t1=$(now_ms)
  echo $((t1 - t0)) >> "$tmp/hup_wall"
done
hup_wall=$(median < "$tmp/hup_wall")
hup_inproc=$(grep -o 'nothing to do ([0-9.]* ms)' "$tmp/log" | grep -o '[0-9.]*' | median)

# 3. RSS and idle CPU.
sleep 1
rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
c0=$(ticks); sleep "$IDLE"; c1=$(ticks)
cpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$IDLE" 'BEGIN {printf "%.3f", 100 * d / hz / s}')

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ $rc = 0 ] || { echo "tierswapd exited $rc" >&2; cat "$tmp/log" >&2; exit 1; }

plan_ms=$(awk -v u="$(cat "$tmp/plan_us")" 'BEGIN {printf "%.1f", u / 1000}')
cat <<TABLE
| figure | value | goal |
| --- | --- | --- |
| \`tierswapctl plan\` wall time (median of 20) | ${plan_ms} ms | ≤ 50 ms |
| no-op reapply on SIGHUP, signal → "nothing to do" in the log (median of 10) | ${hup_wall} ms | ≤ 50 ms |
| same, measured inside tierswapd (load + observe + plan) | ${hup_inproc} ms | |
| tierswapd RSS, applied and idle | $((rss_kib / 1024)).$(( (rss_kib % 1024) * 10 / 1024 )) MiB (${rss_kib} KiB) | ≤ 16 MiB |
| tierswapd CPU while idle over ${IDLE} s | ${cpu} % | ≤ 0.1 % |
TABLE
