// tierswapd-test: tierswapd with its test seams set from its own options
// (--test-fail-step N, --test-fake-kernel). Built only with
// TIERSWAP_BUILD_TESTS, never installed; the tests that need the seams run
// this binary instead of tierswapd.
#include "daemon/daemon.hpp"

int main(int argc, char** argv) {
  tierswap::DaemonOptions options;
  if (auto exit_status = tierswap::parse_command_line(argc, argv, options, /*test_hooks=*/true))
    return *exit_status;
  return tierswap::run_daemon(options);
}
