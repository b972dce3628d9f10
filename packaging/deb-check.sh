#!/usr/bin/env bash
# Installs the .deb on this machine, checks what it put there, removes and
# purges it, and leaves the machine as it was: a pre-existing
# /etc/tierswap.yaml is moved aside and put back, swap and running processes
# are compared before and after. Then lintian: errors fail, warnings are
# listed (docs/packaging.md says why each one stays).
#
# Usage (root): packaging/deb-check.sh [BUILD_DIR]   (default: build)
# .ci/run calls it after `make test`; it runs `make package` itself.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

say() { echo "deb-check: $*"; }
fail() { echo "deb-check: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || { say "skipped: needs root for dpkg -i"; exit 0; }
command -v dpkg >/dev/null || { say "skipped: not a Debian system (no dpkg)"; exit 0; }
if dpkg-query -W -f='${Status}' tierswap 2>/dev/null | grep -q 'installed'; then
  fail "a tierswap package is installed already; this check would replace and purge it"
fi

make package BUILD="$build" >/dev/null
deb=$(ls -t "$build"/tierswap_*.deb | head -n1)
say "package: $deb"

# lintian first: it changes nothing.
if command -v lintian >/dev/null; then
  out=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
  [ -z "$out" ] || echo "$out"
  if grep -q '^E:' <<<"$out"; then fail "lintian reports errors"; fi
  say "lintian: $(grep -c '^W:' <<<"$out" || true) warning(s), no error"
else
  fail "lintian is not installed (packaging/build-deps.txt lists it)"
fi

# What must be the same afterwards.
snapshot() {
  cat /proc/swaps
  ls /sys/block | grep '^zram' || true
  pgrep -f '^/usr/sbin/tierswap' || true
  ls -d /var/swap 2>/dev/null || true
}
before=$(snapshot)
backup=
if [ -e /etc/tierswap.yaml ]; then
  backup=$(mktemp -d)
  mv /etc/tierswap.yaml "$backup/"
  say "moved the existing /etc/tierswap.yaml aside to $backup"
fi
restore() {
  rc=$?
  if dpkg-query -W -f='${Status}' tierswap 2>/dev/null | grep -q 'installed\|config-files'; then
    dpkg --purge tierswap >/dev/null || true
  fi
  if [ -n "$backup" ]; then
    rm -f /etc/tierswap.yaml
    mv "$backup/tierswap.yaml" /etc/tierswap.yaml && rmdir "$backup"
    say "restored /etc/tierswap.yaml"
  fi
  exit $rc
}
trap restore EXIT

DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
dpkg-query -W -f='${Conffiles}\n' tierswap | grep -q '^ /etc/tierswap.yaml ' || fail "/etc/tierswap.yaml is not a conffile"
/usr/bin/tierswapctl check /etc/tierswap.yaml
/usr/sbin/tierswapd --version
/usr/sbin/tierswap-nbd --version
for page in tierswapd.8 tierswapctl.8 tierswap-nbd.8 tierswap.yaml.5; do
  [ -f /usr/share/man/man${page##*.}/$page.gz ] || fail "man page $page is missing"
done
cmp -s <(/usr/bin/tierswapctl completion bash) /usr/share/bash-completion/completions/tierswapctl ||
  fail "the bash completion differs from tierswapctl completion bash"
# Installing starts nothing and enables no swap.
[ "$(snapshot)" = "$before" ] || fail "dpkg -i changed swap, zram or processes: $(diff <(echo "$before") <(snapshot))"
[ ! -e /etc/systemd/system/swap.target.wants/tierswapd.service ] || fail "dpkg -i enabled tierswapd.service"

dpkg --remove tierswap >/dev/null
[ -f /etc/tierswap.yaml ] || fail "dpkg --remove deleted the conffile"
dpkg --purge tierswap >/dev/null
[ ! -e /etc/tierswap.yaml ] || fail "dpkg --purge left /etc/tierswap.yaml"
[ ! -e /usr/sbin/tierswapd ] || fail "dpkg --purge left /usr/sbin/tierswapd"
[ "$(snapshot)" = "$before" ] || fail "the machine changed: $(diff <(echo "$before") <(snapshot))"
say "install, check, remove, purge: ok"
