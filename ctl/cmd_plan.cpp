// tierswapctl plan FILE [--root DIR] [--json]: print what applying FILE would
// do on this machine, touching nothing.
#include <cstdio>
#include <optional>
#include <set>
#include <span>
#include <string>

#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "daemon/plan_file.hpp"
#include "daemon/plan_ops.hpp"

namespace tierswap::ctl {
namespace {

constexpr const char* kHelp =
    "Usage: tierswapctl plan FILE [--root DIR] [--json]\n"
    "Prints the ordered steps (each with its undo) that applying FILE would take on\n"
    "this machine, given what tierswapd already set up (/run/tierswap/state.json).\n"
    "Touches nothing.\n\n"
    "  --root DIR   plan against the machine under DIR (a fake /sys, /proc, /dev, /run)\n"
    "  --json       print the plan as JSON\n\n"
    "Exit status: 0 planned, 1 the config is invalid here (errors on stderr), 2 usage.\n";

int run_plan(std::span<const std::string> args) {
  const auto parsed = parse_file_args("plan", args, true);
  if (!parsed) return kExitUsage;
  const FileArgs& a = *parsed;
  if (a.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  const auto r = plan_file(a.file, a.root, stderr);
  if (!r.ok) return kExitFailed;
  const std::string out = a.json ? plan_to_json(r.plan) : plan_to_text(r.plan);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

const Registrar reg{
    {"plan", "FILE [--root DIR] [--json]", "print the steps applying a config would take", &run_plan}};

}  // namespace
}  // namespace tierswap::ctl
