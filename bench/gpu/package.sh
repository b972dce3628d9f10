#!/bin/bash
# Here, on the Debian build machine, after building BUILD with CUDA:
#   cmake -S . -B build-gpu -DTIERSWAP_WITH_CUDA=ON && cmake --build build-gpu -j2
#   bench/gpu/package.sh [BUILD] [CARRY] [DAEMON_BUILD]
# DAEMON_BUILD (a build without CUDA is enough): also carry tierswapd-test
# and vram_daemon_test from it, for run-device.sh's daemon mode (they find
# BUILD's tierswap-nbd beside them in CARRY/bin).
# Fills CARRY (default .carry/gpu, gitignored) with what the GPU machine
# (Ubuntu 24.04, glibc 2.39, no packages, no network) needs to run the gpu
# tests and the benchmarks: BUILD's binaries, nbdkit with its null and memory
# plugins, and every shared library they load except glibc's and the C++
# runtime (Ubuntu's are newer). These are the installed Debian packages'
# files, i.e. what `apt-get download nbdkit libnbd0 ...; dpkg -x` would give.
set -euo pipefail
B=${1:-build-gpu}
C=${2:-.carry/gpu}
rm -rf "$C"
mkdir -p "$C/bin" "$C/lib" "$C/nbdkit-plugins"
for f in "$B"/bin/*; do
  case "$(basename "$f")" in
    tierswap-nbd|tierswap_gpu_tests|tierswap-gpu-bench|tierswap-evac-bench|*nbd*bench*|*loadgen*|*nbd-load*) cp "$f" "$C/bin/" ;;
  esac
done
if [ -n "${3:-}" ]; then cp "$3/bin/tierswapd-test" "$3/bin/vram_daemon_test" "$3/bin/vram_hog" "$C/bin/"; fi
# The scripts too, so that a device copy of another checkout runs these:
#   bash CARRY/run-device.sh CARRY MODE
cp "$(dirname "$0")"/run-device.sh "$(dirname "$0")"/rss.sh "$C/"
cp "$(command -v nbdkit)" "$C/bin/"
cp /usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-{null,memory}-plugin.so "$C/nbdkit-plugins/"
for f in "$C"/bin/* "$C"/nbdkit-plugins/*; do ldd "$f" 2>/dev/null || true; done |
  awk '/=> \//{print $3}' | sort -u |
  grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so' |
  while read -r lib; do cp -L "$lib" "$C/lib/"; done
strip --strip-debug "$C"/bin/* "$C"/lib/* 2>/dev/null || true
du -sh "$C" "$C"/*
