// tierswapctl check FILE [--root DIR]: validate a config against this
// machine without touching anything.
#include <cstdio>
#include <span>
#include <string>

#include "ctl/command.hpp"
#include "daemon/plan_file.hpp"

namespace tierswap::ctl {
namespace {

struct Args {
  std::string file, root = "/", error;
  bool json = false, help = false;
};

Args parse(std::span<const std::string> args, bool allow_json) {
  Args a;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& s = args[i];
    if (s == "-h" || s == "--help") a.help = true;
    else if (s == "--json" && allow_json) a.json = true;
    else if (s == "--root") {
      if (i + 1 >= args.size()) a.error = "--root needs a DIR";
      else a.root = args[++i];
    } else if (s.starts_with("--root=")) a.root = s.substr(7);
    else if (s.starts_with("-")) a.error = "unknown option \"" + s + "\"";
    else if (a.file.empty()) a.file = s;
    else a.error = "more than one FILE (\"" + a.file + "\", \"" + s + "\")";
  }
  if (!a.help && a.error.empty() && a.file.empty()) a.error = "missing FILE";
  return a;
}

constexpr const char* kHelp =
    "Usage: tierswapctl check FILE [--root DIR]\n"
    "Validates FILE: the schema, and what needs this machine (algorithms the kernel\n"
    "offers, directories, free space, partitions). Touches nothing.\n\n"
    "  --root DIR   check against the machine under DIR (a fake /sys, /proc, /dev)\n\n"
    "Exit status: 0 valid (warnings allowed), 1 invalid (every error on stderr as\n"
    "FILE:LINE:COL: key.path: message (hint)), 2 usage error.\n";

int run_check(std::span<const std::string> args) {
  auto a = parse(args, false);
  if (a.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  if (!a.error.empty()) {
    std::fprintf(stderr, "tierswapctl check: %s\n(see tierswapctl check --help)\n", a.error.c_str());
    return kExitUsage;
  }
  const auto r = plan_file(a.file, a.root, stderr);
  if (!r.ok) return kExitFailed;
  std::printf("%s: valid\n", a.file.c_str());
  return kExitOk;
}

const Registrar reg{{"check", "FILE [--root DIR]", "validate a config without touching anything", &run_check}};

}  // namespace
}  // namespace tierswap::ctl
