#!/bin/sh
# /init of the VM test's initramfs (busybox sh, PID 1). One boot runs the
# scenarios named by tierswap.scenario= (comma-separated) back to back, each
# in a subshell, and prints progress lines "vm: ...", the hog's "hog: ..."
# lines and, per scenario,
#   TIERSWAP-BEGIN: NAME
#   TIERSWAP-VERDICT-NAME: PASS|FAIL <why>|SKIP <why>
# then one line "TIERSWAP-VERDICT: PASS|FAIL <why>" for the whole boot, and
# reboots (QEMU runs with -no-reboot, so it exits). After a failed scenario
# the guest's state is unknown: the ones after it are reported as not run.
#
# Scenarios:
#   test   swap through /dev/nbdN attached by netlink (2 connections), then by
#          the ioctl fallback; every page checksummed; detach leaves nothing;
#          status/find by backend identifier; "no free nbd device" by name
#   daemon tierswapd --no-dbus applies a zram tier (priority 100) and a vram
#          tier (store: host, priority 50): the hog's pages reach /dev/nbd0
#          and come back intact; SIGTERM takes both tiers down and the
#          exporter exits
#   readopt  tierswapd applies the zram and vram tiers; the hog's pages sit
#          on /dev/nbd0 while tierswapd is killed with SIGKILL: the exporter
#          and the swap area stay; a restarted tierswapd re-adopts them
#          (journal: re-adopted, nothing applied, no swapoff, one nbd area,
#          the same exporter); every page verifies; SIGTERM then takes
#          everything down
#   reload the same set-up; a SIGHUP with a config without the vram tier
#          drains /dev/nbd0 into the spare area while the hog's pages sit
#          on it, detaches it and ends the exporter; every page verifies
#   deadexporter  the same set-up; the exporter is killed with SIGKILL while
#          the hog's pages sit on /dev/nbd0, then tierswapd too, and its pid
#          is given to another process; the restarted tierswapd reports the
#          tier failed with the consequences, never signals that process,
#          swaps the lost area off, disconnects it and sets up a fresh tier
#          with a new exporter; the hog, touching a lost page, gets SIGBUS
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
scenarios=$(sed -n 's/.*tierswap\.scenario=\([a-z,]*\).*/\1/p' /proc/cmdline | tr ',' ' ')

uptime_s() { cut -d' ' -f1 /proc/uptime; }
# stop_guest WHY: the remaining scenarios (after the one in /tmp/current, or
# all when none ran) are not run; the boot's verdict; reboot.
stop_guest() {
  local s seen=
  [ -f /tmp/current ] || seen=1
  for s in $scenarios; do
    [ -n "$seen" ] && echo "TIERSWAP-VERDICT-$s: FAIL not run: $1"
    [ "$s" = "$(cat /tmp/current 2>/dev/null)" ] && seen=1
  done
  echo "TIERSWAP-VERDICT: FAIL $1"
  sync
  reboot -f
  sleep 10
}
# The state of things for the log.
dump_state() {
  echo "--- /proc/swaps"; cat /proc/swaps; grep -E "^pswp" /proc/vmstat
  echo "--- dmesg (tail)"; dmesg | tail -n 60
  [ -f /tmp/exporter.log ] && { echo "--- exporter log"; tail -n 20 /tmp/exporter.log; }
  [ -f /tmp/tierswapd.log ] && { echo "--- tierswapd log"; tail -n 40 /tmp/tierswapd.log; }
}
# fail WHY: inside a scenario (its subshell) ends it with FAIL WHY; before
# any scenario (PID 1 itself must not exit) stops the guest.
fail() {
  echo "vm: FAILED: $*"
  dump_state
  if [ -n "${in_scenario:-}" ]; then
    echo "$*" > /tmp/why
    exit 1
  fi
  stop_guest "$*"
}
# skip WHY: ends the scenario with SKIP WHY.
skip() {
  echo "$*" > /tmp/why
  exit 77
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
  echo "vm: FAILED: watchdog: the scenarios did not finish within $1 s of boot"
  dump_state
  s=$(cat /tmp/current 2>/dev/null)
  [ -n "$s" ] && echo "TIERSWAP-VERDICT-$s: FAIL watchdog: still running $1 s after boot"
  stop_guest "watchdog: the scenarios did not finish within $1 s of boot"
}
wd=$(sed -n 's/.*tierswap\.watchdog=\([0-9]*\).*/\1/p' /proc/cmdline)
watchdog "${wd:-170}" &

load nbd nbds_max=2 || fail "insmod nbd"
load zram || fail "insmod zram"

echo +memory > /sys/fs/cgroup/cgroup.subtree_control || fail "cgroup v2 memory controller"
mkdir /sys/fs/cgroup/hog

# The hogs verify their pages backwards: each swapped page comes back once
# (swap_hog.cpp), about half the swap-in of a forward pass. bench measures
# rates the forward way, as bench/results/vm-swap.md recorded them.
hog_order="--backward 1"
# hog_limit MIB: the hog's cgroup is reclaimed (and throttled) above MIB
# (memory.high) and OOM-killed only above twice that (memory.max): with
# memory.max alone at 8M a hog was OOM-killed while its pages were still
# being written to /dev/nbd0 under TCG.
hog_limit() {
  echo max > /sys/fs/cgroup/hog/memory.max &&
    echo "${1}M" > /sys/fs/cgroup/hog/memory.high &&
    echo "$(($1 * 2))M" > /sys/fs/cgroup/hog/memory.max || fail "hog cgroup limits ${1}M/$(($1 * 2))M"
}
# run_hog DEVICE MIB LABEL [LIMIT]: the hog inside the limited cgroup
# (hog_limit, default 48M). Swap-in under TCG runs at about 1 MiB/s, so the
# test keeps its hogs small; bench runs bigger ones.
run_hog() {
  hog_limit "$(echo "${4:-48M}" | tr -d M)"
  sh -c "echo \$\$ > /sys/fs/cgroup/hog/cgroup.procs && exec swap_hog --mib $2 --device $1 --label $3 $hog_order 2>&1" \
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
  out=$(tierswap-nbd-attach attach --exporter /bin/tierswap-nbd --size 64M --handshake-timeout 60 "$@" \
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

# The two-tier config: a small zram tier fills first, the rest of the hog's
# pages go to the vram tier.
write_config() {
  mkdir -p /etc /run
  cat > /etc/tierswap.yaml <<'YAML'
tiers:
  - name: fast
    kind: zram
    size: 4M
    priority: 100
  - name: gpu
    kind: vram
    store: host
    size: 32M
    connections: 2
    priority: 50
YAML
}
# daemon_up LOG: the two-tier config, a spare swap area that is not
# tierswap's (room for drains, lowest priority), tierswapd started in the
# background; sets $daemon, $exporter and $ztier.
daemon_up() {
  [ -x /bin/tierswapd ] || skip "tierswapd is not in the initramfs (not built)"
  write_config
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
# hog_hold: the hog fills 20 MiB under memory.high 8M and holds its pages
# (on zram and /dev/nbd0) until /tmp/release exists; sets $hog.
hog_hold() {
  rm -f /tmp/release /tmp/hog.out
  hog_limit 8
  sh -c "echo \$\$ > /sys/fs/cgroup/hog/cgroup.procs &&
    exec swap_hog --mib 20 --device /dev/nbd0 --label $scenario --hold /tmp/release $hog_order" >/tmp/hog.out 2>&1 &
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
  spare_down
  echo "vm: $scenario: torn down (no nbd swap area, $ztier gone, exporter exited, journal removed)"
}
# The spare zram0 off and reset, for the next scenario.
spare_down() {
  swapoff /dev/zram0 || fail "$scenario: swapoff of the spare zram0"
  echo 1 > /sys/block/zram0/reset || fail "$scenario: reset of the spare zram0"
}
no_proc() { [ ! -e "/proc/$1" ]; }
no_nbd_connected() { [ ! -e /sys/block/nbd0/pid ] && [ ! -e /sys/block/nbd1/pid ]; }
# fresh_exporter OLD-PID: a tierswap-nbd other than OLD-PID runs and an nbd
# device is a swap area.
fresh_exporter() {
  p=$(pidof tierswap-nbd)
  [ -n "$p" ] && [ "$p" != "$1" ] && grep -q '^/dev/nbd' /proc/swaps
}
nbd_used() { awk '$1 == "/dev/nbd0" { print $4 }' /proc/swaps; }


scenario_daemon() {
  daemon_up /tmp/tierswapd.log
  gone "$daemon" && fail "daemon: tierswapd exited"
  echo "vm: daemon: applied ($(grep -c '^/dev/' /proc/swaps) swap areas, exporter pid $exporter)"
  awk 'NR > 1 { print "vm: daemon: swap " $1 " prio=" $5 }' /proc/swaps
  # zram (priority 100) fills first, the rest goes to nbd0; the hog checks
  # nbd0's Used and every page.
  run_hog /dev/nbd0 20 daemon-vram 8M
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
  spare_down
  echo "vm: daemon: torn down (no nbd swap area, $ztier gone, exporter exited, tierswapd exit 0)"
}

scenario_readopt() {
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
}

scenario_reload() {
  daemon_up /tmp/tierswapd.log
  hog_hold
  used=$(nbd_used)
  cat > /etc/tierswap.yaml <<'YAML'
tiers:
  - name: fast
    kind: zram
    size: 4M
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
}

scenario_test() {
  nbd_round nbd-netlink 16 8M --connections 2 --identifier tierswap-vm --dead-timeout 10
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
  nbd_round nbd-ioctl 12 6M --ioctl
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
  # The daemon scenarios that follow expect /dev/nbd0 free.
  wait_for 10 "nbd devices to be free" no_nbd_connected || fail "nbd0/nbd1 still connected after detach"
}

scenario_bench() {
  hog_order=
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
}

scenario_deadexporter() {
  daemon_up /tmp/tierswapd.log
  hog_hold
  used=$(nbd_used)
  old_start=$(awk '{ print $22 }' "/proc/$exporter/stat")
  # The exporter dies while its pages sit on /dev/nbd0; the hog touches
  # none of them (it holds).
  kill -KILL "$exporter"
  wait_for 10 "the exporter to die" gone "$exporter" || fail "deadexporter: the exporter survived SIGKILL"
  gone "$daemon" && fail "deadexporter: tierswapd exited when its exporter died"
  has_swap /dev/nbd0 || fail "deadexporter: /dev/nbd0 left /proc/swaps when the exporter died"
  echo "vm: deadexporter: exporter $exporter killed (SIGKILL) with ${used} KiB on /dev/nbd0"
  # Then tierswapd dies too; PID 1 reaps the exporter, whose pid goes to
  # another process (ns_last_pid): a restart must not take it for the
  # exporter, nor signal it.
  kill -KILL "$daemon"
  wait_for 10 "tierswapd to die" gone "$daemon" || fail "deadexporter: tierswapd survived SIGKILL"
  wait "$daemon" 2>/dev/null
  wait_for 10 "the exporter's pid to be free" no_proc "$exporter" || fail "deadexporter: pid $exporter not reaped"
  decoy=
  for try in 1 2 3 4 5; do
    echo $((exporter - 1)) > /proc/sys/kernel/ns_last_pid || fail "deadexporter: cannot write ns_last_pid"
    sleep 600 &
    decoy=$!
    [ "$decoy" = "$exporter" ] && break
    kill "$decoy"; wait "$decoy" 2>/dev/null; decoy=
  done
  [ -n "$decoy" ] || fail "deadexporter: could not start a process with the exporter's pid $exporter"
  echo "vm: deadexporter: tierswapd killed; pid $exporter is now a sleep (started $(awk '{ print $22 }' \
    "/proc/$decoy/stat"), the exporter started $old_start)"
  mv /tmp/tierswapd.log /tmp/tierswapd-1.log
  tierswapd --no-dbus --config /etc/tierswap.yaml >/tmp/tierswapd.log 2>&1 &
  daemon=$!
  wait_for 60 "the restarted tierswapd to apply" grep -q 'applied' /tmp/tierswapd.log \
    || fail "deadexporter: the restarted tierswapd did not apply"
  wait_for 60 "a fresh vram tier" fresh_exporter "$exporter" \
    || fail "deadexporter: no fresh exporter serves an nbd swap area"
  grep -E 'FAILED|its pages are lost|nbd disconnect|pid '"$exporter" /tmp/tierswapd.log | sed 's/^/vm: deadexporter: log: /'
  # The failure, with what it means for the pages, and why the pid is not
  # the exporter.
  grep -q 'tier "gpu": FAILED: its exporter failed: tierswap-nbd (pid '"$exporter"') has exited: pid '"$exporter"' now belongs to a process started at' \
    /tmp/tierswapd.log || fail "deadexporter: no FAILED line naming pid $exporter as reused"
  grep -q 'The pages it held are gone: the kernel returns I/O errors to their owners' /tmp/tierswapd.log \
    || fail "deadexporter: the FAILED line does not say that the pages are gone"
  grep -q 'swapoff /dev/nbd0 (its exporter failed: its pages are lost, nothing is moved)' /tmp/tierswapd.log \
    || fail "deadexporter: the lost area was not swapped off"
  grep -q 'nbd disconnect nbd0' /tmp/tierswapd.log || fail "deadexporter: /dev/nbd0 was not disconnected"
  grep -q 're-adopted: tierswap-nbd' /tmp/tierswapd.log && fail "deadexporter: the dead exporter was re-adopted"
  gone "$decoy" && fail "deadexporter: the process that got pid $exporter was killed"
  [ "$(grep -c '^/dev/nbd' /proc/swaps)" = 1 ] || fail "deadexporter: /proc/swaps has not one nbd area"
  exporter=$(pidof tierswap-nbd)
  grep -q '"exporter_pid": '"$exporter" /run/tierswap/state.json || fail "deadexporter: the journal lacks the new exporter"
  grep -q '"failed"' /run/tierswap/state.json && fail "deadexporter: the journal still holds a failed tier"
  gone "$daemon" && fail "deadexporter: the restarted tierswapd exited"
  echo "vm: deadexporter: failed tier torn down; fresh tier $(awk '$1 ~ /^\/dev\/nbd/ { print $1 }' /proc/swaps) \
served by exporter $exporter; pid $(echo "$decoy") untouched"
  # The hog's pages on the lost area are gone: the first one it touches
  # kills it with SIGBUS (128 + 7).
  touch /tmp/release
  wait "$hog"; rc=$?
  tail -n 2 /tmp/hog.out | sed 's/^/vm: deadexporter: hog: /'
  [ $rc -eq 135 ] || fail "deadexporter: the hog exited $rc, not 135 (SIGBUS) after its pages were lost"
  echo "vm: deadexporter: the hog got SIGBUS on a lost page (exit $rc)"
  kill "$decoy"; wait "$decoy" 2>/dev/null
  daemon_down
}

# mount_disk: the virtio disk (an ext4 file system made on the host) on
# /var/tmp, where swap files go.
mount_disk() {
  grep -q ' /var/tmp ' /proc/mounts && return 0
  load virtio_blk && load virtio_pci || fail "insmod virtio"
  load crc32c_generic; load ext4 || fail "insmod ext4"
  wait_for 10 "/dev/vda" test -e /dev/vda || fail "no /dev/vda (run_vm.sh adds the disk for bench and soak)"
  mkdir -p /var/tmp && mount -t ext4 /dev/vda /var/tmp || fail "mount /dev/vda on /var/tmp"
  chmod 755 /var /var/tmp
}
swaps_key() { awk 'NR > 1 { print $1, $3, $5 }' /proc/swaps; }
# area_peak AREA FILE: until FILE.stop exists, the highest Used (KiB) of
# swap area AREA seen, every 0.5 s, in FILE.
area_peak() {
  echo 0 > "$2"
  while [ ! -e "$2.stop" ]; do
    # The first line only: a read of /proc/swaps that races a swapon or
    # swapoff can show an area twice (seq_file restarts), which made the
    # comparison below fail with "bad number" in long soaks.
    u=$(awk -v a="$1" '$1 == a { print $4; exit }' /proc/swaps)
    [ "${u:-0}" -gt "$(cat "$2")" ] && echo "$u" > "$2"
    sleep 0.5
  done
}

# benchvram: tierswapctl bench with three groups, the same hog through each:
# a config file with a vram tier alone (store: host), zram alone, a swap
# file alone. No fio in the guest (--raw-seconds 0: its libraries would
# triple the initramfs). Every group verifies every page, the vram group's
# pages go through /dev/nbd0, and the machine is as before.
scenario_benchvram() {
  [ -x /bin/tierswapctl ] || skip "tierswapctl is not in the initramfs (not built)"
  [ -x /bin/tierswapd ] || skip "tierswapd is not in the initramfs (not built)"
  mount_disk
  mkdir -p /etc /run
  cat > /etc/vram.yaml <<'YAML'
# the VRAM tier alone (host store: RAM stands in for the GPU)
version: 1
tiers:
  - name: gpu
    kind: vram
    store: host
    size: 96M
    connections: 2
    priority: 50
YAML
  # The machine's own swap (not the bench's, lowest priority): a group's
  # tierswapd swaps its area off at the end only when the other areas can
  # take what is left on it (the room rule), and a few hundred KiB of other
  # processes' pages are (512 KiB on /dev/nbd0 without it: tierswapd kept the
  # tier and exited 1, the bench failed).
  echo 64M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 \
    || fail "benchvram: spare swap on zram0"
  before=$(swaps_key)
  area_peak /dev/nbd0 /tmp/nbd-peak &
  peak=$!
  seconds=$(sed -n 's/.*tierswap\.bench_seconds=\([0-9]*\).*/\1/p' /proc/cmdline)
  tierswapctl bench /etc/vram.yaml zram disk --yes --seconds "${seconds:-4}" --memory 16M --working-set 40M \
    --raw-seconds 0 --swap-dir /var/tmp --output /tmp/bench >/tmp/bench.out 2>/tmp/bench.err
  rc=$?
  touch /tmp/nbd-peak.stop; wait "$peak"
  sed 's/^/vm: benchvram: /' /tmp/bench.out
  [ $rc -eq 0 ] || { tail -n 20 /tmp/bench.err; cat /tmp/bench/bench.log 2>/dev/null | tail -n 20
    fail "benchvram: tierswapctl bench exited $rc: $(tail -n 1 /tmp/bench.err)"; }
  r=/tmp/bench/report.json
  [ -f $r ] || fail "benchvram: no $r"
  [ "$(grep -c '^   "name":' $r)" = 3 ] || fail "benchvram: the report has not 3 groups"
  grep '"status":' $r | grep -qv '"ok"' && fail "benchvram: not every group is ok: $(grep '"status"' $r | tr -d '\n')"
  awk '/"bad_pages":/ { gsub(/,/, ""); if ($2 != "0") bad = 1; n++ } END { exit bad || n < 3 }' $r \
    || fail "benchvram: a group read back bad pages: $(grep bad_pages $r | tr -d '\n')"
  awk '/"pages":/ { gsub(/,/, ""); if ($2 + 0 <= 0) bad = 1; n++ } END { exit bad || n < 3 }' $r \
    || fail "benchvram: a group verified no pages"
  # The vram group (the first) swapped through /dev/nbd0.
  awk '/"areas": \[/ { g++; on = 1; next } on && /\]/ { on = 0 } on && g == 1 && /"\/dev\/nbd0"/ { found = 1 }
       END { exit !found }' $r || fail "benchvram: the vram group's areas do not list /dev/nbd0"
  # ... and the report's swap-out counter moved in that group, where
  # /dev/nbd0 was the only swap area.
  out=$(awk '/"name":/ { g++ } g == 1 && /"pswpout":/ { gsub(/,/, ""); if (f == "") f = $2; l = $2 }
             END { print l - f }' $r)
  [ "${out:-0}" -gt 0 ] || fail "benchvram: the report shows no swap-out in the vram group"
  [ "$(cat /tmp/nbd-peak)" -gt 0 ] || fail "benchvram: /dev/nbd0 never held a page during the bench"
  # Restored: the same swap areas, no daemon, exporter, journal or nbd device.
  [ "$(swaps_key)" = "$before" ] || fail "benchvram: /proc/swaps differs after the bench: $(swaps_key)"
  pidof tierswapd tierswap-nbd && fail "benchvram: a tierswapd or tierswap-nbd is left"
  [ -e /run/tierswap/state.json ] && fail "benchvram: the journal is left"
  [ -e /sys/block/nbd0/pid ] && fail "benchvram: /dev/nbd0 is still connected"
  ls /var/tmp/*.swap 2>/dev/null && fail "benchvram: the disk group's swap file is left"
  spare_down
  grep -E '^   "name":|"(pages|bad_pages)":' $r | tr -d ' ,' | paste -sd ' ' | sed 's/^/vm: benchvram: report: /'
  echo "vm: benchvram: 3 groups ok, every page verified, vram group swapped out $out pages through /dev/nbd0" \
    "(peak $(cat /tmp/nbd-peak) KiB used), machine restored"
}

# soak: checksummed memory swapped through a zram tier, the vram tier (host
# store) and a swap file, while the vram tier is demoted and promoted in a
# loop over D-Bus (tierswapctl; a dbus-daemon in the guest), for
# tierswap.soak=SECONDS (run_vm.sh: TIERSWAP_VM_SOAK_SECONDS). Zero checksum
# failures, zero SIGBUS, no "Write-error on swap-device" in the kernel log.
scenario_soak() {
  [ -x /bin/tierswapctl ] || skip "tierswapctl is not in the initramfs (not built)"
  [ -x /bin/tierswapd ] || skip "tierswapd is not in the initramfs (not built)"
  [ -x /bin/dbus-daemon ] || skip "dbus-daemon is not in the initramfs (install dbus)"
  mount_disk
  mkdir -p /etc /run/dbus /var/lib/dbus
  grep -q '^root:' /etc/passwd 2>/dev/null || echo 'root:x:0:0:root:/root:/bin/sh' >> /etc/passwd
  grep -q '^root:' /etc/group 2>/dev/null || echo 'root:x:0:' >> /etc/group
  cat > /etc/bus.conf <<'XML'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
XML
  dbus-daemon --nofork --nopidfile --config-file=/etc/bus.conf >/tmp/bus.log 2>&1 &
  bus=$!
  wait_for 20 "the bus" test -S /run/dbus/system_bus_socket || fail "soak: dbus-daemon did not start: $(cat /tmp/bus.log)"
  export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
  cat > /etc/tierswap.yaml <<'YAML'
tiers:
  - name: fast
    kind: zram
    size: 4M
    priority: 100
  - name: gpu
    kind: vram
    store: host
    size: 32M
    connections: 2
    priority: 50
  - name: file
    kind: file
    path: /var/tmp/soak.swap
    size: 64M
    priority: 10
YAML
  # The machine's own swap, for what is left on the tiers at the end (the
  # room rule; see benchvram).
  echo 32M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 \
    || fail "soak: spare swap on zram0"
  tierswapd --config /etc/tierswap.yaml >/tmp/tierswapd.log 2>&1 &
  daemon=$!
  wait_for 60 "the tiers" has_swap /var/tmp/soak.swap || fail "soak: the swap file never became a swap area"
  has_swap /dev/nbd0 || fail "soak: /dev/nbd0 is not a swap area"
  wait_for 30 "tierswapd on the bus" tierswapctl status >/dev/null 2>&1 || fail "soak: tierswapctl status: $(tierswapctl status 2>&1 | tail -n 2)"
  ztier=$(awk '$1 != "/dev/zram0" && $1 ~ /^\/dev\/zram/ && $5 == 100 { print $1 }' /proc/swaps)
  dmesg -c >/dev/null
  soak_s=$(sed -n 's/.*tierswap\.soak=\([0-9]*\).*/\1/p' /proc/cmdline)
  soak_s=${soak_s:-20}
  echo "vm: soak: $soak_s s; tiers $(awk 'NR > 1 { printf "%s(prio %s) ", $1, $5 }' /proc/swaps)"
  # The hog, again and again with a new seed each time: fill 20 MiB under
  # memory.high 8M (swap-out through whatever tiers are on), read back and
  # check every page (swap-in). Results in /tmp/soak-hogs.
  hog_limit 8
  rm -f /tmp/soak-stop /tmp/soak-hogs
  (
    n=0
    while [ ! -e /tmp/soak-stop ]; do
      n=$((n + 1))
      sh -c "echo \$\$ > /sys/fs/cgroup/hog/cgroup.procs && exec swap_hog --mib 20 --seed $n --label soak-$n" \
        >/tmp/soak-hog.out 2>&1
      echo "$n $? $(grep '^hog:' /tmp/soak-hog.out)" >> /tmp/soak-hogs
    done
  ) &
  hogs=$!
  rm -f /tmp/peak-*
  area_peak /dev/nbd0 /tmp/peak-nbd &
  peaks=$!
  area_peak /var/tmp/soak.swap /tmp/peak-file &
  peaks="$peaks $!"
  area_peak "$ztier" /tmp/peak-zram &
  peaks="$peaks $!"
  t_end=$(awk -v s="$soak_s" '{ printf "%d", $1 + s }' /proc/uptime)
  cycles=0
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$t_end" ]; do
    tierswapctl demote gpu >/tmp/demote.out 2>&1 || fail "soak: demote (cycle $((cycles + 1))): $(tail -n 3 /tmp/demote.out)"
    wait_for 30 "/dev/nbd0 off" no_swap /dev/nbd0 || fail "soak: /dev/nbd0 still a swap area after demote"
    tierswapctl promote gpu >/tmp/promote.out 2>&1 || fail "soak: promote (cycle $((cycles + 1))): $(tail -n 3 /tmp/promote.out)"
    wait_for 30 "/dev/nbd0 on" has_swap /dev/nbd0 || fail "soak: /dev/nbd0 not a swap area after promote"
    cycles=$((cycles + 1))
  done
  touch /tmp/soak-stop
  wait "$hogs"
  touch /tmp/peak-nbd.stop /tmp/peak-file.stop /tmp/peak-zram.stop
  wait $peaks
  runs=$(wc -l < /tmp/soak-hogs)
  bad=$(awk '$2 != 0' /tmp/soak-hogs | wc -l)
  sigbus=$(awk '$2 == 135' /tmp/soak-hogs | wc -l)
  corrupt=$(awk '{ for (i = 3; i <= NF; i++) if ($i ~ /^(corrupted|misplaced)=/) { split($i, kv, "="); c += kv[2] } } END { print c + 0 }' /tmp/soak-hogs)
  pages=$(awk '{ for (i = 3; i <= NF; i++) if ($i ~ /^mib=/) { split($i, kv, "="); p += kv[2] * 256 } } END { print p + 0 }' /tmp/soak-hogs)
  werr=$(dmesg | grep -c 'Write-error on swap-device')
  echo "vm: soak: $soak_s s, $cycles demote/promote cycles, $runs hog runs, $pages pages checked, $corrupt bad, $sigbus SIGBUS, $werr write errors"
  echo "vm: soak: most used: $ztier $(cat /tmp/peak-zram) KiB, /dev/nbd0 $(cat /tmp/peak-nbd) KiB," \
    "/var/tmp/soak.swap $(cat /tmp/peak-file) KiB"
  [ "$cycles" -ge 1 ] || fail "soak: no demote/promote cycle finished"
  for t in zram nbd file; do
    [ "$(cat /tmp/peak-$t)" -gt 0 ] || fail "soak: the $t tier never held a page"
  done
  [ "$runs" -ge 1 ] || fail "soak: no hog run finished"
  [ "$werr" = 0 ] || fail "soak: $werr 'Write-error on swap-device' in the kernel log: $(dmesg | grep -m 3 'Write-error')"
  [ "$sigbus" = 0 ] || fail "soak: $sigbus hog run(s) got SIGBUS"
  [ "$corrupt" = 0 ] || fail "soak: $corrupt page(s) came back wrong"
  [ "$bad" = 0 ] || fail "soak: a hog run failed: $(awk '$2 != 0' /tmp/soak-hogs | head -n 2)"
  gone "$daemon" && fail "soak: tierswapd exited"
  kill -TERM "$daemon"
  wait_for 90 "tierswapd to exit" gone "$daemon" || fail "soak: tierswapd still runs 90 s after SIGTERM"
  wait "$daemon"; rc=$?
  [ $rc -eq 0 ] || fail "soak: tierswapd exited $rc after SIGTERM"
  no_swap /dev/nbd || fail "soak: an nbd swap area is left"
  no_swap /var/tmp/soak.swap || fail "soak: the swap file is left on"
  [ -n "$ztier" ] && { no_swap "$ztier" || fail "soak: the zram tier's $ztier is left"; }
  pidof tierswap-nbd >/dev/null && fail "soak: an exporter still runs"
  kill "$bus"; wait "$bus" 2>/dev/null
  spare_down
  echo "vm: soak: torn down (no tier left)"
}

# --- the scenarios, one after the other --------------------------------------
for s in $scenarios; do
  echo "$s" > /tmp/current
  echo "TIERSWAP-BEGIN: $s"
  t0=$(uptime_s)
  rm -f /tmp/why /tmp/release /tmp/hog.out /tmp/tierswapd.log /tmp/tierswapd-1.log /tmp/exporter.log
  (in_scenario=1; scenario=$s; "scenario_$s")
  rc=$?
  took=$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }')
  why=$(cat /tmp/why 2>/dev/null)
  echo "vm: $s: took $took s (guest time)"
  case $rc in
    0) echo "TIERSWAP-VERDICT-$s: PASS" ;;
    77) echo "TIERSWAP-VERDICT-$s: SKIP $why" ;;
    *) echo "TIERSWAP-VERDICT-$s: FAIL ${why:-exit $rc}"
       stop_guest "$s failed before it" ;;
  esac
done
echo "vm: done uptime_s=$(uptime_s)"
rm -f /tmp/current
echo "TIERSWAP-VERDICT: PASS"
sync
reboot -f
sleep 10
