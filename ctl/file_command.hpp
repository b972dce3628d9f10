// check and plan: the same command line (FILE [--root DIR] [--json]) and the
// same first half (help, usage checks, plan_file()); each adds what it
// prints once the config planned cleanly.
#pragma once

#include <cstdio>
#include <functional>

#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "daemon/plan_file.hpp"

namespace tierswap::ctl {

// Declares FILE, --root (and --json when `allow_json`) on `sub`. The run
// prints `help_text` for --help; exits 2 on a usage error, 1 when the config
// does not plan here (diagnostics on stderr); else returns then(args, plan).
inline std::function<int()> file_command(CLI::App& sub, const char* help_text, bool allow_json,
                                         std::function<int(const FileArgs&, const FilePlan&)> then) {
  auto a = file_args(sub, allow_json);
  return [&sub, a, help_text, then = std::move(then)] {
    if (*a->help) {
      std::fputs(help_text, stdout);
      return kExitOk;
    }
    if (!file_args_ok(sub, *a)) return kExitUsage;
    const auto r = plan_file(a->file, a->root, stderr);
    if (!r.ok) return kExitFailed;
    return then(*a, r);
  };
}

}  // namespace tierswap::ctl
