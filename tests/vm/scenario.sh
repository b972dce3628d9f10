#!/bin/sh
# /init of the VM test's initramfs (busybox sh, PID 1). Prints progress lines
# "vm: ...", the hog's "hog: ..." lines and one verdict line
# "TIERSWAP-VERDICT: PASS|FAIL <why>", then reboots (QEMU exits on it).
#
# tierswap.scenario= on the kernel command line picks what runs:
#   test   swap through /dev/nbdN attached by netlink (2 connections), then by
#          the ioctl fallback; every page checksummed; detach leaves nothing;
#          status/find by backend identifier; "no free nbd device" by name
#   daemon tierswapd --no-dbus applies a zram tier (priority 100) and a vram
#          tier (store: host, 64M, priority 50): the hog's pages reach
#          /dev/nbd0 and come back intact; SIGTERM takes both tiers down
#          and the exporter exits
#   readopt  tierswapd applies the zram and vram tiers; the hog's pages sit
#          on /dev/nbd0 while tierswapd is killed with SIGKILL: the exporter
#          and the swap area stay; a restarted tierswapd re-adopts them
#          (journal: re-adopted, nothing applied, no swapoff, one nbd area,
#          the same exporter); every page verifies; SIGTERM then takes
#          everything down
#   reload the same set-up; a SIGHUP with a config without the vram tier
#          drains /dev/nbd0 into the spare area while the hog's pages sit
#          on it, detaches it and ends the exporter; every page verifies
#   bench  the same hog through tierswap-nbd (2 and 1 connections), zram and
#          a virtio disk (a swap area on a host file), for rates as ratios
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "vm: booted uptime_s=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r) cpus=$(nproc)"

verdict() {
  echo "TIERSWAP-VERDICT: $*"
  sync
  reboot -f
  sleep 10
}
fail() {
  echo "vm: FAILED: $*"
  echo "--- /proc/swaps"; cat /proc/swaps; grep -E "^pswp" /proc/vmstat
  echo "--- dmesg (tail)"; dmesg | tail -n 60
  [ -f /tmp/exporter.log ] && { echo "--- exporter log"; tail -n 20 /tmp/exporter.log; }
  [ -f /tmp/tierswapd.log ] && { echo "--- tierswapd log"; tail -n 40 /tmp/tierswapd.log; }
  verdict "FAIL $*"
}
# insmod with the module's dependencies first (lib/modules/deps: "module dep").
load() {
  local m=$1 d
  shift
  grep -q "^$m " /proc/modules && return 0
  for d in $(awk -v m="$m" '$1 == m { print $2 }' /lib/modules/deps); do load "$d" || return 1; done
  insmod "/lib/modules/$m.ko" "$@"
}
# Fails with the state of things before the host's timeout kills QEMU blind.
watchdog() {
  sleep "$1"
  ps
  echo w > /proc/sysrq-trigger
  fail "watchdog: the scenario did not finish within $1 s of boot"
}
wd=$(sed -n 's/.*tierswap\.watchdog=\([0-9]*\).*/\1/p' /proc/cmdline)
watchdog "${wd:-170}" &
scenario=$(sed -n 's/.*tierswap\.scenario=\([a-z]*\).*/\1/p' /proc/cmdline)

load nbd nbds_max=2 || fail "insmod nbd"
load zram || fail "insmod zram"

echo +memory > /sys/fs/cgroup/cgroup.subtree_control || fail "cgroup v2 memory controller"
mkdir /sys/fs/cgroup/hog

# run_hog DEVICE MIB LABEL [MEMORY_MAX]: the hog inside the limited cgroup
# (memory.max default 48M). Swap-in under TCG runs at about 1 MiB/s, so the
# test keeps its hogs small; bench runs bigger ones.
run_hog() {
  echo "${4:-48M}" > /sys/fs/cgroup/hog/memory.max || fail "memory.max ${4:-48M}"
  sh -c "echo \$\$ > /sys/fs/cgroup/hog/cgroup.procs && exec swap_hog --mib $2 --device $1 --label $3 2>&1" \
    || fail "hog on $1 ($3)"
}
# exporter_gone PID: waits up to 5 s for the exporter to exit after detach.
exporter_gone() {
  i=0
  while kill -0 "$1" 2>/dev/null; do
    # A zombie has exited: PID 1 (this shell) reaps it only in wait.
    grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null && return 0
    i=$((i + 1)); [ $i -gt 50 ] && return 1
    sleep 0.1
  done
}
# attach_swap_hog ATTACH-OPTIONS...: attaches, swaps, checks, detaches.
nbd_round() {
  label=$1; mib=$2; max=$3; shift 3
  t0=$(cut -d' ' -f1 /proc/uptime)
  out=$(tierswap-nbd-attach attach --exporter /bin/tierswap-nbd --size 256M --handshake-timeout 60 "$@" \
    2>/tmp/exporter.log) || fail "attach ($label): $(tail -n 3 /tmp/exporter.log)"
  echo "vm: $label: $out (attach took $(awk -v a="$t0" '{ printf "%.1f", $1 - a }' /proc/uptime) s)"
  dev=${out%% *}
  index=${dev#/dev/nbd}
  via=$(echo "$out" | sed -n 's/.*via=\([a-z]*\).*/\1/p')
  exporter=$(echo "$out" | sed -n 's/.*exporter=\([0-9]*\).*/\1/p')
  helper=$(echo "$out" | sed -n 's/.*helper=\([0-9]*\).*/\1/p')
  [ -e "/sys/block/nbd$index/pid" ] || fail "$label: $dev is not connected after attach"
  tierswap-nbd-attach mkswap "$dev" || fail "$label: mkswap $dev"
  tierswap-nbd-attach swapon "$dev" 100 || fail "$label: swapon $dev"
  grep -q "^$dev " /proc/swaps || fail "$label: $dev not in /proc/swaps after swapon"
  run_hog "$dev" "$mib" "$label" "$max"
  tierswap-nbd-attach swapoff "$dev" || fail "$label: swapoff $dev"
  if [ "$via" = ioctl ]; then
    tierswap-nbd-attach detach "$index" --ioctl || fail "$label: detach $dev"
  else
    tierswap-nbd-attach detach "$index" || fail "$label: detach $dev"
  fi
  exporter_gone "$exporter" || fail "$label: the exporter (pid $exporter) still runs after detach"
  [ "$helper" != 0 ] && { exporter_gone "$helper" || fail "$label: the NBD_DO_IT helper still runs"; }
  i=0
  while [ -e "/sys/block/nbd$index/pid" ]; do
    i=$((i + 1)); [ $i -gt 50 ] && fail "$label: $dev still connected after detach"
    sleep 0.1
  done
  grep -q nbd /proc/swaps && fail "$label: /proc/swaps still lists an nbd device"
  echo "vm: $label: detached"
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  n=$(($1 * 5)); what=$2; shift 2
  i=0
  until "$@"; do
    i=$((i + 1)); [ $i -gt $n ] && return 1
    sleep 0.2
  done
}
has_swap() { grep -q "^$1" /proc/swaps; }
no_swap() { ! grep -q "^$1" /proc/swaps; }
no_used_but() { awk -v keep="$1" 'NR > 1 && $1 != keep && $4 > 0 { exit 1 }' /proc/swaps; }
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# daemon_up LOG: the two-tier config, a spare swap area that is not
# tierswap's (room for drains, lowest priority), tierswapd started in the
# background; sets $daemon, $exporter and $ztier.
daemon_up() {
  [ -x /bin/tierswapd ] || verdict "SKIP tierswapd is not in the initramfs (not built)"
  mkdir -p /etc /run
  cat > /etc/tierswap.yaml <<'YAML'
tiers:
  - name: fast
    kind: zram
    size: 16M
    priority: 100
  - name: gpu
    kind: vram
    store: host
    size: 64M
    connections: 2
    priority: 50
YAML
  echo 48M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 \
    || fail "$scenario: spare swap on zram0"
  tierswapd --no-dbus --config /etc/tierswap.yaml >"$1" 2>&1 &
  daemon=$!
  wait_for 60 "the vram tier" has_swap /dev/nbd0 || fail "$scenario: /dev/nbd0 never became a swap area"
  ztier=$(awk '$1 != "/dev/zram0" && $1 ~ /^\/dev\/zram/ && $5 == 100 { print $1 }' /proc/swaps)
  [ -n "$ztier" ] || fail "$scenario: no zram swap area at priority 100"
  exporter=$(pidof tierswap-nbd)
  [ -n "$exporter" ] || fail "$scenario: no tierswap-nbd runs"
  # Started by root with every capability, it keeps only CAP_IPC_LOCK (14)
  # and CAP_SYS_RESOURCE (24).
  caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$exporter/status")
  [ "$caps" = 0000000001004000 ] || fail "$scenario: the exporter's CapEff is $caps, not 0000000001004000"
  echo "vm: $scenario: applied (exporter pid $exporter CapEff $caps, zram tier $ztier)"
}
# hog_hold: the hog fills 48 MiB under memory.max 16M and holds its pages
# (on zram and /dev/nbd0) until /tmp/release exists; sets $hog.
hog_hold() {
  rm -f /tmp/release /tmp/hog.out
  echo 16M > /sys/fs/cgroup/hog/memory.max || fail "memory.max 16M"
  sh -c "echo \$\$ > /sys/fs/cgroup/hog/cgroup.procs &&
    exec swap_hog --mib 48 --device /dev/nbd0 --label $scenario --hold /tmp/release" >/tmp/hog.out 2>&1 &
  hog=$!
  wait_for 120 "the hog's fill" grep -q '^hog: filled' /tmp/hog.out || fail "$scenario: the hog did not fill"
  grep '^hog: filled' /tmp/hog.out
  grep -q '^hog: filled.* used_kib=[1-9]' /tmp/hog.out || fail "$scenario: no page of the hog reached /dev/nbd0"
}
# hog_verify: releases the hog and checks that every page came back.
hog_verify() {
  touch /tmp/release
  wait "$hog"; rc=$?
  grep '^hog: label' /tmp/hog.out
  [ $rc -eq 0 ] || fail "$scenario: the hog's pages did not verify (exit $rc): $(tail -n 3 /tmp/hog.out)"
}
# daemon_down: SIGTERM; everything tierswap set up is gone, the exporter too.
daemon_down() {
  kill -TERM "$daemon"
  wait_for 90 "tierswapd to exit" gone "$daemon" || fail "$scenario: tierswapd still runs 90 s after SIGTERM"
  wait "$daemon" 2>/dev/null; rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 127 ] || fail "$scenario: tierswapd exited $rc after SIGTERM"
  no_swap /dev/nbd || fail "$scenario: an nbd swap area is left"
  no_swap "$ztier" || fail "$scenario: the zram tier's $ztier is left"
  wait_for 10 "the exporter to exit" gone "$exporter" || fail "$scenario: the exporter (pid $exporter) still runs"
  [ -e /sys/block/nbd0/pid ] && fail "$scenario: /dev/nbd0 is still connected"
  [ -e /run/tierswap/state.json ] && fail "$scenario: the journal is left after a clean stop"
  swapoff /dev/zram0 || fail "$scenario: swapoff of the spare zram0"
  echo "vm: $scenario: torn down (no nbd swap area, $ztier gone, exporter exited, journal removed)"
}
nbd_used() { awk '$1 == "/dev/nbd0" { print $4 }' /proc/swaps; }

case "$scenario" in
  readopt)
    daemon_up /tmp/tierswapd.log
    hog_hold
    before=$(grep -c '^/dev/nbd' /proc/swaps)
    used=$(nbd_used)
    kill -KILL "$daemon"
    wait_for 10 "tierswapd to die" gone "$daemon" || fail "readopt: tierswapd survived SIGKILL"
    wait "$daemon" 2>/dev/null
    gone "$exporter" && fail "readopt: the exporter died with tierswapd"
    has_swap /dev/nbd0 || fail "readopt: /dev/nbd0 left /proc/swaps when tierswapd died"
    [ -e /sys/block/nbd0/pid ] || fail "readopt: /dev/nbd0 was disconnected when tierswapd died"
    grep -q '"exporter_pid": '"$exporter" /run/tierswap/state.json || fail "readopt: the journal lacks the exporter"
    echo "vm: readopt: tierswapd killed (SIGKILL); exporter $exporter still serves /dev/nbd0 (used ${used} KiB)"
    mv /tmp/tierswapd.log /tmp/tierswapd-1.log
    tierswapd --no-dbus --config /etc/tierswap.yaml >/tmp/tierswapd.log 2>&1 &
    daemon=$!
    wait_for 60 "the restarted tierswapd to apply" grep -q 'applied' /tmp/tierswapd.log \
      || fail "readopt: the restarted tierswapd did not apply"
    grep 're-adopted' /tmp/tierswapd.log | sed 's/^/vm: readopt: log: /'
    grep -q 'tier "gpu": re-adopted: tierswap-nbd pid '"$exporter" /tmp/tierswapd.log \
      || fail "readopt: the journal was not re-adopted (no 're-adopted' line for pid $exporter)"
    grep -q 'applied: nothing to do' /tmp/tierswapd.log || fail "readopt: the restart applied steps"
    grep -qi 'swapoff\|swap_header\|mkswap' /tmp/tierswapd.log && fail "readopt: the restart swapped off or re-headered"
    gone "$daemon" && fail "readopt: the restarted tierswapd exited"
    [ "$(grep -c '^/dev/nbd' /proc/swaps)" = "$before" ] || fail "readopt: /proc/swaps has not one nbd area"
    [ "$(pidof tierswap-nbd)" = "$exporter" ] || fail "readopt: tierswap-nbd is not just pid $exporter: $(pidof tierswap-nbd)"
    now_used=$(nbd_used)
    [ "${now_used:-0}" -gt 0 ] || fail "readopt: /dev/nbd0 lost its pages (used ${now_used:-none})"
    echo "vm: readopt: re-adopted (one nbd area, exporter $exporter, used ${used} -> ${now_used} KiB)"
    hog_verify
    wait_for 5 "swap areas to settle" no_used_but /dev/zram0 || true
    daemon_down
    ;;
  reload)
    daemon_up /tmp/tierswapd.log
    hog_hold
    used=$(nbd_used)
    cat > /etc/tierswap.yaml <<'YAML'
tiers:
  - name: fast
    kind: zram
    size: 16M
    priority: 100
YAML
    kill -HUP "$daemon"
    wait_for 120 "the vram tier to drain" no_swap /dev/nbd0 \
      || fail "reload: /dev/nbd0 still a swap area 120 s after SIGHUP"
    wait_for 10 "the exporter to exit" gone "$exporter" || fail "reload: the exporter still runs after the drain"
    wait_for 10 "the reload to end" grep -q 'reload: applied' /tmp/tierswapd.log \
      || fail "reload: no 'reload: applied' line"
    [ -e /sys/block/nbd0/pid ] && fail "reload: /dev/nbd0 is still connected"
    gone "$daemon" && fail "reload: tierswapd exited"
    echo "vm: reload: the vram tier drained (${used} KiB off /dev/nbd0), detached, exporter exited"
    hog_verify
    daemon_down
    ;;
  daemon)
    [ -x /bin/tierswapd ] || verdict "SKIP tierswapd is not in the initramfs (not built)"
    mkdir -p /etc /run
    cat > /etc/tierswap.yaml <<'YAML'
tiers:
  - name: fast
    kind: zram
    size: 16M
    priority: 100
  - name: gpu
    kind: vram
    store: host
    size: 64M
    connections: 2
    priority: 50
YAML
    # A spare swap area that is not tierswap's, at the lowest priority.
    echo 32M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 \
      || fail "daemon: spare swap on zram0"
    tierswapd --no-dbus --config /etc/tierswap.yaml >/tmp/tierswapd.log 2>&1 &
    daemon=$!
    wait_for 60 "the vram tier" has_swap /dev/nbd0 || fail "daemon: /dev/nbd0 never became a swap area"
    ztier=$(awk '$1 != "/dev/zram0" && $1 ~ /^\/dev\/zram/ && $5 == 100 { print $1 }' /proc/swaps)
    [ -n "$ztier" ] || fail "daemon: no zram swap area at priority 100"
    gone "$daemon" && fail "daemon: tierswapd exited"
    exporter=$(pidof tierswap-nbd)
    [ -n "$exporter" ] || fail "daemon: no tierswap-nbd runs"
    echo "vm: daemon: applied ($(grep -c '^/dev/' /proc/swaps) swap areas, exporter pid $exporter)"
    awk 'NR > 1 { print "vm: daemon: swap " $1 " prio=" $5 }' /proc/swaps
    # zram (priority 100) fills first, the rest goes to nbd0; the hog checks
    # nbd0's Used and every page.
    run_hog /dev/nbd0 48 daemon-vram 16M
    # Pages of the initramfs (tmpfs) that the hog touched stay on swap after
    # it exits; the room rule lets tierswap swap off its last area only when
    # another can take them: the spare zram0 (not tierswap's) is that area.
    wait_for 5 "swap areas to settle" no_used_but /dev/zram0 \
      || echo "vm: daemon: still used: $(awk 'NR > 1 { print $1 "=" $4 "KiB" }' /proc/swaps | tr '\n' ' ')"
    kill -TERM "$daemon"
    wait_for 60 "tierswapd to exit" gone "$daemon" || fail "daemon: tierswapd still runs 60 s after SIGTERM"
    wait "$daemon"; rc=$?
    [ $rc -eq 0 ] || fail "daemon: tierswapd exited $rc after SIGTERM"
    no_swap /dev/nbd || fail "daemon: an nbd swap area is left"
    no_swap "$ztier" || fail "daemon: the zram tier's $ztier is left"
    wait_for 10 "the exporter to exit" gone "$exporter" || fail "daemon: the exporter (pid $exporter) still runs"
    [ -e /sys/block/nbd0/pid ] && fail "daemon: /dev/nbd0 is still connected"
    swapoff /dev/zram0 || fail "daemon: swapoff of the spare zram0"
    echo "vm: daemon: torn down (no nbd swap area, $ztier gone, exporter exited, tierswapd exit 0)"
    ;;
  test)
    nbd_round nbd-netlink 32 16M --connections 2 --identifier tierswap-vm --dead-timeout 10
    # status/find while attached, through the netlink family.
    out=$(tierswap-nbd-attach attach --exporter /bin/tierswap-nbd --size 16M --identifier tierswap-find \
      --handshake-timeout 60 \
      2>>/tmp/exporter.log) || fail "attach for find"
    dev=${out%% *}
    tierswap-nbd-attach status | grep -q "^${dev#/dev/} connected=1 backend=tierswap-find" \
      || fail "status does not list $dev: $(tierswap-nbd-attach status 2>&1)"
    [ "$(tierswap-nbd-attach find tierswap-find)" = "$dev" ] || fail "find tierswap-find did not name $dev"
    tierswap-nbd-attach find no-such-backend 2>/dev/null && fail "find no-such-backend succeeded"
    tierswap-nbd-attach detach "${dev#/dev/nbd}" || fail "detach $dev"
    echo "vm: status/find: ok"
    nbd_round nbd-ioctl 24 12M --ioctl
    # nbds_max=2: with both devices taken the ioctl path says so by name.
    a=$(tierswap-nbd-attach attach --exporter /bin/tierswap-nbd --size 4M --ioctl --handshake-timeout 60 \
      2>>/tmp/exporter.log) || fail "ioctl attach of a first small device"
    b=$(tierswap-nbd-attach attach --exporter /bin/tierswap-nbd --size 4M --ioctl --handshake-timeout 60 \
      2>>/tmp/exporter.log) || fail "ioctl attach of a second small device"
    c=$(tierswap-nbd-attach attach --exporter /bin/tierswap-nbd --size 4M --ioctl --handshake-timeout 60 2>&1) \
      && fail "a third ioctl attach with nbds_max=2 succeeded: $c"
    echo "$c" | grep -q "no free nbd device" || fail "a third ioctl attach failed without naming it: $c"
    a=${a%% *}; b=${b%% *}
    tierswap-nbd-attach detach "${a#/dev/nbd}" --ioctl && tierswap-nbd-attach detach "${b#/dev/nbd}" --ioctl \
      || fail "detach $a $b"
    echo "vm: no free device: ok ($a $b taken)"
    ;;
  bench)
    nbd_round nbd-netlink-2conn 32 16M --connections 2
    nbd_round nbd-netlink-1conn 32 16M --connections 1
    echo 256M > /sys/block/zram0/disksize || fail "zram0 disksize"
    tierswap-nbd-attach mkswap /dev/zram0 && tierswap-nbd-attach swapon /dev/zram0 100 || fail "zram0 swapon"
    run_hog /dev/zram0 32 zram-lzo-rle 16M
    tierswap-nbd-attach swapoff /dev/zram0 || fail "zram0 swapoff"
    load virtio_blk && load virtio_pci || fail "insmod virtio"
    i=0; while [ ! -e /dev/vda ]; do i=$((i + 1)); [ $i -gt 50 ] && fail "no /dev/vda"; sleep 0.1; done
    tierswap-nbd-attach mkswap /dev/vda && tierswap-nbd-attach swapon /dev/vda 100 || fail "vda swapon"
    run_hog /dev/vda 32 virtio-disk 16M
    tierswap-nbd-attach swapoff /dev/vda || fail "vda swapoff"
    ;;
  *) fail "unknown tierswap.scenario=$scenario" ;;
esac
echo "vm: done uptime_s=$(cut -d' ' -f1 /proc/uptime)"
verdict PASS
