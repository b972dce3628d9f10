// tierswapd: command line, then one sd-event loop (signals, the observe
// tick, PSI triggers, the D-Bus service) around the Engine and the Manager:
// each tick and each PSI trigger is one observation, one policy decision.
//
//   int main(int argc, char** argv) {
//     tierswap::DaemonOptions o;
//     if (auto exit = tierswap::parse_command_line(argc, argv, o)) return *exit;
//     return tierswap::run_daemon(o);
//   }
//
// Exit status (tierswapd(8)): 0 stopped cleanly; 1 the first apply failed
// (after rolling back) or teardown could not restore everything; 2 usage.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/engine.hpp"
#include "daemon/signal_providers.hpp"

namespace tierswap {

struct DaemonOptions {
  EngineOptions engine;  // root, config, keep_on_exit (and the test hooks)
  bool use_dbus = true;
  std::string bus_address;  // empty: the system bus
  // spdlog level name: trace, debug, info, warning, error, critical, off.
  std::string log_level = "info";
  // --record FILE: every snapshot the policy engine decided on, as JSON
  // lines (policy/trace.hpp) appended to FILE; empty: off.
  std::string record_path;
  // Where the GPU and power signals come from: with `signal_readers` (the
  // installed daemon) NVML and UPower/sysfs (daemon/signal_readers.hpp);
  // without, `providers` as given (tests; defaults: none, unknown).
  bool signal_readers = true;
  SignalProviders providers;
  // Logged as warnings once logging is set up (tierswapd-test names the
  // test seams it set).
  std::vector<std::string> start_warnings;
};

// Parses tierswapd's options into `out`. Returns nullopt to go on, or the
// exit status when the command line is done: 0 after --help or --version,
// 2 after a usage error (printed to stderr, naming the option).
// It has no test options: tierswapd-test (daemon/test_main.cpp) takes its
// own out of the command line before calling it.
std::optional<int> parse_command_line(int argc, char** argv, DaemonOptions& out);

// Applies the config and serves until SIGTERM/SIGINT; the exit status.
int run_daemon(const DaemonOptions& options);

}  // namespace tierswap
