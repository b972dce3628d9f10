#!/bin/bash
# Boots Debian's own kernel (it ships nbd.ko and zram.ko) under QEMU/TCG with
# an initramfs that holds busybox, the kernel modules, the given tierswap
# binaries with the shared libraries ldd names, and scenario.sh as /init.
# The guest prints "TIERSWAP-VERDICT: PASS|FAIL|SKIP ..." on the serial
# console and reboots (QEMU runs with -no-reboot, so it exits).
#
#   run_vm.sh --scenario test|daemon|readopt|reload|bench --bin PATH... [--optional-bin PATH...] --cache DIR --work DIR
#             [--timeout S]
# VM_APPEND replaces "quiet" on the guest's command line (debugging). The
# guest's own watchdog fires 25 s before --timeout, so that a hang still
# ends with the guest's state on the console.
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
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) scenario=$2; shift 2 ;;
    --bin) bins+=("$2"); shift 2 ;;
    --optional-bin) [ -x "$2" ] && bins+=("$2") || echo "vm: $2 is not built; left out"; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    *) echo "run_vm.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$cache" ] && [ -n "$work" ] || { echo "run_vm.sh: --cache and --work are required" >&2; exit 2; }

skip() { echo "SKIP: $*"; exit 77; }
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
want_modules="nbd zram virtio_blk virtio_pci"
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
[ -f "$cache/package" ] || fetch_kernel

# --- the initramfs ----------------------------------------------------------
t_build=$(now)
rm -rf "$work"
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
"$root/bin/busybox" --install "$root/bin"  # hard links
copy_with_libs() {
  local lib
  cp "$1" "$root/bin/"
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
if [ "$scenario" = bench ]; then
  truncate -s 512M "$work/disk.img"
  drive=(-drive "file=$work/disk.img,if=virtio,format=raw,cache=writeback")
fi
t_boot=$(now)
timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 \
  -display none -monitor none -serial "file:$console" -no-reboot "${drive[@]}" \
  -kernel "$cache/vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 ${VM_APPEND:-quiet} psi=1 panic=-1 tierswap.scenario=$scenario tierswap.watchdog=$((timeout_s - 25))" </dev/null
rc=$?
wall=$(elapsed "$t_boot")
tr -d '\r' < "$console" > "$work/console.txt"
grep -E '^(vm:|hog:|TIERSWAP-)' "$work/console.txt"
echo "vm: qemu ran $wall s (exit $rc)"
verdict=$(grep -a '^TIERSWAP-VERDICT:' "$work/console.txt" | tail -1)
case "$verdict" in
  "TIERSWAP-VERDICT: PASS"*) exit 0 ;;
  "TIERSWAP-VERDICT: SKIP"*) echo "SKIP: ${verdict#TIERSWAP-VERDICT: SKIP }"; exit 77 ;;
esac
[ $rc -eq 124 ] && echo "FAIL: no verdict within $timeout_s s" || echo "FAIL: ${verdict:-no verdict line}"
echo "--- console ($console) ---"
tail -n 80 "$work/console.txt"
exit 1
