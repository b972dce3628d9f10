#!/bin/sh
# Compiles or links one libFuzzer target of the g++ tree with clang (label
# fuzz; see CMakeLists.txt). CMake runs it as the target's compiler launcher
# and link launcher:
#
#   clang_launcher.sh CLANG CACHE <the tree's compiler> ARGS...
#
# The tree's compiler (g++) is dropped and ARGS go to CLANG (through CACHE,
# e.g. ccache, unless it is "-"), with two adjustments for clang 16 with
# libstdc++ 12: -std=c++23 is spelt -std=c++2b, and __cpp_concepts is
# raised to 202002L. clang 16 implements the C++20 concepts feature that
# libstdc++ 12's <expected> tests for (P0848, conditionally trivial special
# members) but still reports 201907L, which hides std::expected; clang 19
# and later report 202002L themselves.
set -eu
clang=$1 cache=$2
shift 3
n=$#
while [ "$n" -gt 0 ]; do
  a=$1
  shift
  case $a in
    -std=c++23 | -std=gnu++23) a=-std=c++2b ;;
  esac
  set -- "$@" "$a"
  n=$((n - 1))
done
if [ "$cache" = "-" ]; then
  exec "$clang" -D__cpp_concepts=202002L -Wno-macro-redefined "$@"
fi
exec "$cache" "$clang" -D__cpp_concepts=202002L -Wno-macro-redefined "$@"
