#!/bin/bash
# The exporter's resident memory with --store cuda, idle (no client), as
# bench/results/nbd-gpu.md reports it: VmRSS, VmLck and the mappings that
# hold the most, from /proc/PID/smaps.
#   bench/gpu/rss.sh TIERSWAP_NBD [extra tierswap-nbd args...]
set -u
NBD=$1; shift
dir=$(mktemp -d /tmp/tsrss.XXXXXX)  # 0700: the exporter refuses a socket in a directory others can write
sock=$dir/ts.sock
"$NBD" --socket "$sock" --size 2G --store cuda --force "$@" >/tmp/tsrss.log 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
sleep 4
if ! kill -0 "$pid" 2>/dev/null; then echo "tierswap-nbd exited:"; cat /tmp/tsrss.log; exit 1; fi
echo "tierswap-nbd --store cuda --size 2G $*: $(grep -E '^(VmRSS|VmLck|Threads)' /proc/$pid/status | tr -s ' \t' ' ' | tr '\n' ';')"
awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6; if (name=="") name="[anonymous]"} /^Rss:/{rss[name]+=$2}
     END{for (n in rss) if (rss[n] >= 1024) printf "  %8.1f MiB  %s\n", rss[n]/1024, n}' /proc/$pid/smaps | sort -rn | head -12
kill "$pid"; wait "$pid" 2>/dev/null
rm -rf "$dir"
