// Option handling shared by tierswapctl's commands, on top of CLI11.
//
// Each subcommand prints its own help text (what it does, not only its
// options) and reports leftovers itself, so that every usage error reads
// `tierswapctl CMD: ... (see tierswapctl CMD --help)`, names the option or
// argument, and exits 2.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

namespace tierswap::ctl {

// Replaces CLI11's help flag of `sub` with -h/--help that the command
// handles (prints `text` to stdout), and lets unknown arguments through to
// check_leftovers() instead of CLI11's generic message.
inline std::shared_ptr<bool> own_help(CLI::App& sub) {
  auto help = std::make_shared<bool>(false);
  sub.set_help_flag();
  sub.add_flag("-h,--help", *help, "show this command's help");
  sub.allow_extras();
  return help;
}

inline void usage_error(const std::string& cmd, const std::string& what) {
  std::fprintf(stderr, "tierswapctl %s: %s (see tierswapctl %s --help)\n", cmd.c_str(), what.c_str(),
               cmd.c_str());
}

// False (after printing the usage error) when CLI11 left anything over: an
// option the command does not have, or an argument past its positionals
// (`extra` describes that: "more than one FILE"; empty: unexpected argument).
inline bool check_leftovers(const CLI::App& sub, const std::string& extra = {}) {
  for (const auto& a : sub.remaining()) {
    if (a.size() > 1 && a[0] == '-') {
      usage_error(sub.get_name(), "unknown option \"" + a + "\"");
      return false;
    }
  }
  if (!sub.remaining().empty()) {
    usage_error(sub.get_name(),
                extra.empty() ? "unexpected argument \"" + sub.remaining().front() + "\"" : extra);
    return false;
  }
  return true;
}

// [--json] and nothing else (status, reload): run(sub, help, json).
inline std::function<int()> json_only_command(CLI::App& sub,
                                              int (*run)(const CLI::App&, bool help, bool json)) {
  auto help = own_help(sub);
  auto json = std::make_shared<bool>(false);
  sub.add_flag("--json", *json, "print JSON");
  return [&sub, help, json, run] { return run(sub, *help, *json); };
}

// FILE [--root DIR] [--json] (check, plan): one FILE, a root defaulting to "/".
struct FileArgs {
  std::string file, root = "/";
  bool json = false;
  std::shared_ptr<bool> help;
};

inline std::shared_ptr<FileArgs> file_args(CLI::App& sub, bool allow_json) {
  auto a = std::make_shared<FileArgs>();
  a->help = own_help(sub);
  sub.add_option("FILE", a->file, "the config to read");
  sub.add_option("--root", a->root, "the machine under DIR (a fake /sys, /proc, /dev, /run)");
  if (allow_json) sub.add_flag("--json", a->json, "print JSON");
  return a;
}

// After parsing: false (after printing the usage error) when FILE is
// missing or there is more than one, or an option is unknown.
inline bool file_args_ok(const CLI::App& sub, const FileArgs& a) {
  if (!check_leftovers(sub, "more than one FILE")) return false;
  if (a.file.empty()) {
    usage_error(sub.get_name(), "missing FILE");
    return false;
  }
  return true;
}

}  // namespace tierswap::ctl
