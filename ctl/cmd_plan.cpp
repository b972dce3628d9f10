// tierswapctl plan FILE [--root DIR] [--json]: print what applying FILE would
// do on this machine, touching nothing.
#include <cstdio>
#include <span>
#include <string>

#include "ctl/command.hpp"
#include "daemon/plan_file.hpp"
#include "daemon/plan_ops.hpp"

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
    "Usage: tierswapctl plan FILE [--root DIR] [--json]\n"
    "Prints the ordered steps (each with its undo) that applying FILE would take on\n"
    "this machine, given what tierswapd already set up (/run/tierswap/state.json).\n"
    "Touches nothing.\n\n"
    "  --root DIR   plan against the machine under DIR (a fake /sys, /proc, /dev, /run)\n"
    "  --json       print the plan as JSON\n\n"
    "Exit status: 0 planned, 1 the config is invalid here (errors on stderr), 2 usage.\n";

int run_plan(std::span<const std::string> args) {
  auto a = parse(args, true);
  if (a.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  if (!a.error.empty()) {
    std::fprintf(stderr, "tierswapctl plan: %s\n(see tierswapctl plan --help)\n", a.error.c_str());
    return kExitUsage;
  }
  const auto r = plan_file(a.file, a.root, stderr);
  if (!r.ok) return kExitFailed;
  const std::string out = a.json ? plan_to_json(r.plan) : plan_to_text(r.plan);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

const Registrar reg{{"plan", "FILE [--root DIR] [--json]", "print the steps applying a config would take", &run_plan}};

}  // namespace
}  // namespace tierswap::ctl
