#!/bin/bash
# Boots Debian's own kernel (it ships nbd.ko and zram.ko) under QEMU/TCG with
# an initramfs that holds busybox, the kernel modules, the given tierswap
# binaries with the shared libraries ldd names, and scenario.sh as /init.
# One boot runs several scenarios back to back (scenario.sh); the guest
# prints "TIERSWAP-VERDICT-NAME: PASS|FAIL|SKIP ..." per scenario and
# "TIERSWAP-VERDICT: ..." for the boot on the serial console, and reboots
# (QEMU runs with -no-reboot, so it exits).
#
#   run_vm.sh --scenario NAME[,NAME...] --bin PATH... [--optional-bin PATH...] --cache DIR --work DIR
#             [--timeout S] [--boot-only]
#   run_vm.sh --check NAME --work DIR
# NAME: test, daemon, readopt, reload, deadexporter, benchvram, soak, bench
# (scenario.sh). TIERSWAP_VM_SOAK_SECONDS (default 20) is the soak's length,
# TIERSWAP_VM_BENCH_SECONDS (default 4) benchvram's load per group; both
# lengthen --timeout by what they add.
# --boot-only: exit 0 once the guest gave a verdict for every scenario (the
# per-scenario verdicts are then read by --check: one ctest per scenario on
# one boot); without it the exit status is the boot's verdict.
# --check NAME: the console lines of scenario NAME from the boot in --work
# DIR and its verdict as the exit status.
# VM_APPEND replaces "quiet" on the guest's command line (debugging). The
# guest's own watchdog fires 25 s before --timeout, so that a hang still
# ends with the guest's state on the console. VM_ACCEL=kvm|tcg picks the
# accelerator; by default KVM when /dev/kvm can be opened, else TCG.
#
# The kernel package (apt-get download linux-image-<version>-amd64) is
# fetched once into --cache; only vmlinuz and the needed modules are kept.
# Exit: 0 pass, 1 fail or timeout, 77 skipped (reason on stdout).
set -u
here=$(cd "$(dirname "$0")" && pwd)
scenario=test
cache=
work=
timeout_s=200
bins=()
check=
boot_only=
soak_json=
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) scenario=$2; shift 2 ;;
    --bin) bins+=("$2"); shift 2 ;;
    --optional-bin) [ -x "$2" ] && bins+=("$2") || echo "vm: $2 is not built; left out"; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --check) check=$2; shift 2 ;;
    --boot-only) boot_only=1; shift ;;
    --soak-json) soak_json=$2; shift 2 ;;
    *) echo "run_vm.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# --soak-json FILE: a passed soak's figures (tests/robustness_figures.py
# reads them): its length, cycles, pages checked and what came back wrong.
write_soak_json() {  # console
  [ -n "$soak_json" ] || return 0
  local line
  line=$(grep -a '^vm: soak: [0-9]* s, ' "$1" | tail -1)
  [ -n "$line" ] || return 0
  mkdir -p "$(dirname "$soak_json")"
  echo "$line" | awk '{
    gsub(/,/, "");
    printf "{\"seconds\": %d, \"hours\": %.4f, \"cycles\": %d, \"hog_runs\": %d, \"pages\": %d, ", $3, $3 / 3600, $5, $8, $11;
    printf "\"checksum_failures\": %d, \"sigbus\": %d, \"write_errors\": %d}\n", $14, $16, $18
  }' > "$soak_json"
}

# --check NAME: one scenario's part of the console of a boot that ran.
if [ -n "$check" ]; then
  [ -n "$work" ] || { echo "run_vm.sh: --check needs --work" >&2; exit 2; }
  console=$work/console.txt
  [ -f "$console" ] || { echo "FAIL: no console log $console (the boot did not run)"; exit 1; }
  if grep -q '^SKIP: ' "$work/boot.txt" 2>/dev/null; then
    echo "$(grep '^SKIP: ' "$work/boot.txt" | tail -1)"
    exit 77
  fi
  awk -v s="$check" '$0 == "TIERSWAP-BEGIN: " s { on = 1 } on { print } $0 ~ "^TIERSWAP-VERDICT-" s ":" { on = 0 }' \
    "$console"
  verdict=$(grep -a "^TIERSWAP-VERDICT-$check:" "$console" | tail -1)
  case "$verdict" in
    *": PASS"*) [ "$check" = soak ] && write_soak_json "$console"; exit 0 ;;
    *": SKIP"*) echo "SKIP: ${verdict#*: SKIP }"; exit 77 ;;
  esac
  echo "FAIL: ${verdict:-no verdict for $check in $console}"
  exit 1
fi
[ -n "$cache" ] && [ -n "$work" ] || { echo "run_vm.sh: --cache and --work are required" >&2; exit 2; }
# A console of an earlier boot must not answer --check for this one.
rm -f "$work/console.txt" "$work/boot.txt"

skip() {
  echo "SKIP: $*"
  [ -n "$work" ] && mkdir -p "$work" && echo "SKIP: $*" > "$work/boot.txt"
  exit 77
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

for tool in qemu-system-x86_64 cpio gzip apt-get dpkg-deb ldd; do
  command -v "$tool" >/dev/null || skip "$tool is missing (make deps installs qemu-system-x86, cpio)"
done
busybox=/bin/busybox
[ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 || skip "$busybox is missing or not static (install busybox-static)"
for b in "${bins[@]}"; do [ -x "$b" ] || { echo "FAIL: $b is not built"; exit 1; }; done

# --- the kernel: once, cached ---------------------------------------------
# Modules the scenario loads; their dependencies come from each module's
# .modinfo "depends=" (the package ships no modules.dep: depmod makes it).
# ext4 (+ crc32c, its soft dependency) mounts the bench's disk, where swap
# files go.
want_modules="nbd zram virtio_blk virtio_pci ext4 crc32c_generic"
fetch_kernel() {
  local pkg tmp mdir f m deps queue
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$pkg" ] || skip "apt-cache knows no linux-image-amd64 (no Debian package lists: apt-get update)"
  tmp=$(mktemp -d "$cache.tmp.XXXXXX")
  echo "vm: downloading $pkg (once; cached in $cache)"
  if ! (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1); then
    rm -rf "$tmp"
    skip "apt-get download $pkg failed (no network or package lists)"
  fi
  dpkg-deb -x "$tmp"/*.deb "$tmp/root" || { rm -rf "$tmp"; echo "FAIL: cannot unpack $pkg"; exit 1; }
  mkdir -p "$tmp/out/modules"
  cp "$tmp"/root/boot/vmlinuz-* "$tmp/out/vmlinuz"
  mdir=$(echo "$tmp"/root/lib/modules/*)
  # Copy each wanted module and, transitively, what it depends on.
  queue=$want_modules
  while [ -n "$queue" ]; do
    set -- $queue
    m=$1; shift; queue="$*"
    [ -e "$tmp/out/modules/$m.ko" ] && continue
    f=$(find "$mdir" -name "$m.ko" | head -1)
    [ -n "$f" ] || { rm -rf "$tmp"; echo "FAIL: $pkg has no $m.ko"; exit 1; }
    cp "$f" "$tmp/out/modules/$m.ko"
    deps=$(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | tr ',' ' ')
    for d in $deps; do echo "$m $d" >> "$tmp/out/modules/deps"; done
    queue="$queue $deps"
  done
  touch "$tmp/out/modules/deps"
  echo "$pkg" > "$tmp/out/package"
  rm -rf "$cache"
  mv "$tmp/out" "$cache"
  rm -rf "$tmp"
}
mkdir -p "$(dirname "$cache")"
cached() {
  local m
  [ -f "$cache/package" ] || return 1
  for m in $want_modules; do [ -e "$cache/modules/$m.ko" ] || return 1; done
}
cached || fetch_kernel

# --- the initramfs ----------------------------------------------------------
t_build=$(now)
rm -rf "$work"
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
"$root/bin/busybox" --install "$root/bin"  # hard links
# Binaries go in without their debug info (a RelWithDebInfo tierswapd is
# ~60 MiB, ~3 MiB stripped): the guest unpacks the initramfs under TCG.
copy_with_libs() {
  local lib
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$root/bin/$(basename "$1")" "$1" || cp "$1" "$root/bin/"
  else
    cp "$1" "$root/bin/"
  fi
  for lib in $(ldd "$1" | awk '/=> \//{print $3} /^\t\/[^ ]*ld-linux/{print $1}'); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
for b in "${bins[@]}"; do copy_with_libs "$b"; done
cp "$cache"/modules/*.ko "$cache/modules/deps" "$root/lib/modules/"
cp "$here/scenario.sh" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$work/initrd.gz"
echo "vm: initramfs $(du -h "$work/initrd.gz" | cut -f1) built in $(elapsed "$t_build") s ($(cat "$cache/package"))"

# --- boot -------------------------------------------------------------------
console=$work/console.log
drive=()
if [[ ",$scenario," == *,bench* || ",$scenario," == *,soak,* ]]; then
  # An ext4 file system (no journal: nothing to replay, less to write) for
  # swap files; bench's raw-device round uses the device itself.
  truncate -s 512M "$work/disk.img"
  command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 is missing (install e2fsprogs)"
  mkfs.ext4 -q -F -O ^has_journal,^metadata_csum "$work/disk.img" || { echo "FAIL: mkfs.ext4"; exit 1; }
  drive=(-drive "file=$work/disk.img,if=virtio,format=raw,cache=writeback")
fi
# Knobs for long runs: the soak's length and the bench's load per group.
extra=
if [[ ",$scenario," == *,soak,* ]]; then
  soak_s=${TIERSWAP_VM_SOAK_SECONDS:-20}
  extra+=" tierswap.soak=$soak_s"
  timeout_s=$((timeout_s + soak_s))
fi
if [[ ",$scenario," == *,benchvram,* ]]; then
  bench_s=${TIERSWAP_VM_BENCH_SECONDS:-4}
  extra+=" tierswap.bench_seconds=$bench_s"
  timeout_s=$((timeout_s + 3 * bench_s))
fi
accel=${VM_ACCEL:-}
if [ -z "$accel" ]; then
  accel=tcg
  # KVM only where it can be used (these build machines have no /dev/kvm).
  [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null && accel=kvm
fi
cpu=max
[ "$accel" = kvm ] && cpu=host
echo "vm: accelerator $accel"
t_boot=$(now)
timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m 1024 -smp 2 \
  -display none -monitor none -serial "file:$console" -no-reboot "${drive[@]}" \
  -kernel "$cache/vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 ${VM_APPEND:-quiet} psi=1 panic=-1 tierswap.scenario=$scenario tierswap.watchdog=$((timeout_s - 25))$extra" </dev/null
rc=$?
wall=$(elapsed "$t_boot")
tr -d '\r' < "$console" > "$work/console.txt"
grep -E '^(vm:|hog:|TIERSWAP-)' "$work/console.txt"
echo "vm: qemu ran $wall s (exit $rc)"
verdict=$(grep -a '^TIERSWAP-VERDICT:' "$work/console.txt" | tail -1)
if [ -n "$boot_only" ] && [ -n "$verdict" ]; then
  echo "vm: the boot ended with a verdict per scenario ($verdict): ctest's vm_* tests check each"
  exit 0
fi
case "$verdict" in
  "TIERSWAP-VERDICT: PASS"*) [[ ",$scenario," == *,soak,* ]] && write_soak_json "$work/console.txt"; exit 0 ;;
esac
[ $rc -eq 124 ] && echo "FAIL: no verdict within $timeout_s s" || echo "FAIL: ${verdict:-no verdict line}"
echo "--- console ($console) ---"
tail -n 80 "$work/console.txt"
exit 1
