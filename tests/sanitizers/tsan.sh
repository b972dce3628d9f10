#!/bin/sh
# ThreadSanitizer over the threaded suites (docs/robustness.md, "Sanitizers"):
# configures the tsan preset (build-tsan), builds only the test programs of
# the labels nbd, dbus and threads (and, through their dependencies,
# tierswap-nbd, tierswapd, tierswapd-test, tierswapctl), then runs
# `ctest --preset tsan` with any further arguments (e.g. -R, -j).
#
#   tests/sanitizers/tsan.sh                 # the whole run
#   JOBS=4 tests/sanitizers/tsan.sh -R Order # build with 4 jobs, run some
#
# Reports of child processes (the exporter, the daemon) go to their stderr,
# which the tests often keep in a log; with halt_on_error=1 the child exits
# 66 and the test fails. To read them, run ctest in build-tsan without the
# preset (whose environment would replace TSAN_OPTIONS) and with log_path,
# so that every process writes /tmp/tsan/r.<pid>:
#   mkdir -p /tmp/tsan && cd build-tsan
#   opts=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/../tests/sanitizers/tsan.supp
#   TSAN_OPTIONS=$opts:log_path=/tmp/tsan/r ctest -L nbd
set -eu
cd "$(dirname "$0")/../.."

launcher=""
if command -v ccache >/dev/null 2>&1; then
  launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache"
fi
# shellcheck disable=SC2086
cmake --preset tsan $launcher >/dev/null

# gtest_discover_tests lists a program's tests when it is built: a program
# left out here is silently missing from the run (the whole run is 401 tests).
targets="nbd_protocol_test nbd_libnbd_test nbd_bad_input_test nbd_alloc_test nbd_tools_test
  nbd_order_test nbd_exporter_test nbd_evac_test nbd_caps_test nbd_control_socket_test
  nbd_attach_test vram_daemon_test bench_raw_exporter_test
  tierswap_dbus_tests tierswapd_dbus_tests tierswap_upower_tests tierswapd_evac_tests
  tierswapd_suspend_tests tierswap_bus_loop_tests
  engine_unit_tests figures_async_tests vram_stop_test vram_store_unit_tests"
# shellcheck disable=SC2086
cmake --build build-tsan -j"${JOBS:-2}" --target $targets

exec ctest --preset tsan "$@"
