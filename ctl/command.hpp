// tierswapctl's command table. Each command lives in its own ctl/cmd_*.cpp
// and registers itself with a static Registrar, so commands are added without
// touching main.cpp:
//
//   static const tierswap::ctl::Registrar reg{{"check", "FILE [--root DIR]", "validate a config",
//   &setup_check}};
//
// main.cpp makes one CLI11 subcommand per entry and calls its `setup`, which
// declares the options and positionals (with cli_args.hpp's helpers) and
// returns what runs once the command line is parsed. That function returns
// the process exit status (documented in tierswapctl(8)):
//   0 success, 1 the thing checked is invalid / the operation failed,
//   2 usage error, 3 the daemon is not reachable, 4 permission denied.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace tierswap::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNoDaemon = 3;
inline constexpr int kExitDenied = 4;

struct Command {
  std::string_view name;                         // "check"
  std::string_view args;                         // "FILE [--json]", for `tierswapctl --help`
  std::string_view summary;                      // one line for `tierswapctl --help`
  std::function<int()> (*setup)(CLI::App& sub);  // declares options; returns the run
  std::string_view alias = {};                   // "top" for "watch"
};

const std::vector<Command>& commands();

struct Registrar {
  explicit Registrar(Command c);
};

}  // namespace tierswap::ctl
