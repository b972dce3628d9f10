// tierswapd-test: tierswapd with its test seams set from its own options
// (--test-fail-step N, --test-fake-kernel). Built only with
// TIERSWAP_BUILD_TESTS, never installed; the tests that need the seams run
// this binary instead of tierswapd. The recording kernel comes from the
// test library (tests/support/), which tierswapd does not link.
#include "daemon/daemon.hpp"
#include "tests/support/recording_kernel.hpp"

int main(int argc, char** argv) {
  tierswap::DaemonOptions options;
  if (auto exit_status = tierswap::parse_command_line(argc, argv, options, /*test_hooks=*/true))
    return *exit_status;
  if (options.engine.fake_kernel) options.engine.make_kernel = tierswap::swap::recording_kernel_on;
  return tierswap::run_daemon(options);
}
