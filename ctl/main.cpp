// tierswapctl: the command-line front end. Commands register themselves
// (command.hpp); this file only dispatches and prints help.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "ctl/command.hpp"

namespace tierswap::ctl {

namespace {
std::vector<Command>& table() {
  static std::vector<Command> t;
  return t;
}
}  // namespace

const std::vector<Command>& commands() {
  return table();
}

Registrar::Registrar(Command c) {
  table().push_back(c);
}

}  // namespace tierswap::ctl

namespace {

void print_help(FILE* out) {
  using tierswap::ctl::commands;
  auto cmds = commands();
  std::sort(cmds.begin(), cmds.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::fprintf(out,
               "Usage: tierswapctl COMMAND [ARGS...]\n"
               "Control and inspect tierswap, the tiered swap manager.\n\nCommands:\n");
  for (const auto& c : cmds) {
    std::string head = std::string(c.name) + " " + std::string(c.args);
    // Long synopses get the summary on a line of its own.
    if (head.size() > 28)
      std::fprintf(out, "  %s\n  %-28s %.*s\n", head.c_str(), "", static_cast<int>(c.summary.size()),
                   c.summary.data());
    else
      std::fprintf(out, "  %-28s %.*s\n", head.c_str(), static_cast<int>(c.summary.size()), c.summary.data());
  }
  std::fprintf(out,
               "\nOptions:\n  -h, --help                   show this help (COMMAND --help: the command's)\n"
               "  --version                    show the version\n"
               "\nExit status: 0 ok, 1 invalid or failed, 2 usage error, 3 daemon not reachable,\n"
               "4 permission denied. See tierswapctl(8).\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tierswap::ctl;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_help(stderr);
    return kExitUsage;
  }
  const std::string& name = args.front();
  if (name == "-h" || name == "--help" || name == "help") {
    print_help(stdout);
    return kExitOk;
  }
  if (name == "--version") {
    std::printf("tierswapctl %s\n", TIERSWAP_VERSION);
    return kExitOk;
  }
  for (const auto& c : commands()) {
    if (c.name == name || (!c.alias.empty() && c.alias == name)) {
      return c.run(std::span<const std::string>(args).subspan(1));
    }
  }
  std::fprintf(stderr, "tierswapctl: unknown command \"%s\" (see tierswapctl --help)\n", name.c_str());
  return kExitUsage;
}
