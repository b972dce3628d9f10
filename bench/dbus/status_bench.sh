#!/usr/bin/env bash
# `tierswapctl status` end to end (goal <= 20 ms): starts a private
# dbus-daemon and the scripted test server (tests/dbus: the real DbusService
# in front of a scripted ManagerApi), then times N runs of
# `tierswapctl status`, with hyperfine when installed, else a loop of
# date +%s%N. Prints mean and p95 in milliseconds.
#
#   bench/dbus/status_bench.sh [BUILD_DIR] [RUNS]     (default build-dbus, 100)
# SERVER="tierswapd --root ... --bus-address {address}" swaps the server in.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-dbus}
runs=${2:-100}
ctl=$build/bin/tierswapctl
server=${SERVER:-"$build/bin/tierswap-dbus-test-server --address {address} --status tests/dbus/fixtures/status.json --log /dev/null"}

dir=$(mktemp -d /tmp/tierswap-bench-XXXXXX)
bus_pid= srv_pid=
cleanup() {
  [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null || true
  [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null && wait "$bus_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

address="unix:path=$dir/system_bus_socket"
cat > "$dir/bus.conf" <<CONF
<busconfig>
  <listen>$address</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <include>$PWD/packaging/dbus/org.tierswap.Manager1.conf</include>
</busconfig>
CONF
dbus-daemon --nofork --nopidfile --config-file="$dir/bus.conf" 2>"$dir/bus.log" &
bus_pid=$!
for _ in $(seq 100); do [ -S "$dir/system_bus_socket" ] && break; sleep 0.02; done
export DBUS_SYSTEM_BUS_ADDRESS=$address
${server//\{address\}/$address} >"$dir/server.log" 2>&1 &
srv_pid=$!
for _ in $(seq 100); do timeout 2 "$ctl" status >/dev/null 2>&1 && break; sleep 0.02; done
"$ctl" status >/dev/null || { echo "server did not come up:"; cat "$dir/server.log"; exit 1; }

echo "machine: $(uname -srm), $(nproc) cpus; $(date -u +%Y-%m-%dT%H:%MZ); runs: $runs"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 10 --runs "$runs" --export-json "$dir/h.json" "$ctl status" >/dev/null
  python3 - "$dir/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
t = sorted(x * 1000 for x in r["times"])
p95 = t[min(len(t) - 1, int(round(0.95 * len(t))) - 1)]
print(f"tierswapctl status (hyperfine): mean {r['mean']*1000:.2f} ms, p95 {p95:.2f} ms, "
      f"min {t[0]:.2f} ms, max {t[-1]:.2f} ms")
PY
else
  for _ in $(seq 10); do "$ctl" status >/dev/null; done
  : > "$dir/times"
  for _ in $(seq "$runs"); do
    a=$(date +%s%N); "$ctl" status >/dev/null; b=$(date +%s%N)
    echo $(( (b - a) / 1000 )) >> "$dir/times"
  done
  sort -n "$dir/times" | awk '{ t[NR] = $1; s += $1 }
    END { i = int(0.95 * NR + 0.5); if (i < 1) i = 1;
          printf "tierswapctl status (date loop): mean %.2f ms, p95 %.2f ms, min %.2f ms, max %.2f ms\n",
                 s / NR / 1000, t[i] / 1000, t[1] / 1000, t[NR] / 1000 }'
fi
