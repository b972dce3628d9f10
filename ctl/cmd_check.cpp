// tierswapctl check FILE [--root DIR]: validate a config against this
// machine without touching anything.
#include <cstdio>
#include <optional>
#include <set>
#include <span>
#include <string>

#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "daemon/plan_file.hpp"

namespace tierswap::ctl {
namespace {

constexpr const char* kHelp =
    "Usage: tierswapctl check FILE [--root DIR]\n"
    "Validates FILE: the schema, and what needs this machine (algorithms the kernel\n"
    "offers, directories, free space, partitions). Touches nothing.\n\n"
    "  --root DIR   check against the machine under DIR (a fake /sys, /proc, /dev)\n\n"
    "Exit status: 0 valid (warnings allowed), 1 invalid (every error on stderr as\n"
    "FILE:LINE:COL: key.path: message (hint)), 2 usage error.\n";

int run_check(std::span<const std::string> args) {
  const auto parsed = parse_file_args("check", args, false);
  if (!parsed) return kExitUsage;
  const FileArgs& a = *parsed;
  if (a.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  const auto r = plan_file(a.file, a.root, stderr);
  if (!r.ok) return kExitFailed;
  std::printf("%s: valid\n", a.file.c_str());
  return kExitOk;
}

const Registrar reg{
    {"check", "FILE [--root DIR]", "validate a config without touching anything", &run_check}};

}  // namespace
}  // namespace tierswap::ctl
