// tierswapctl: the command-line front end. Commands register themselves
// (command.hpp); this file makes the CLI11 parser from the table, runs the
// chosen command and turns parse errors into exit status 2.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "ctl/cli_args.hpp"
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

// The subcommand CLI11 was inside when it failed, for the message.
std::string failing_command(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) return sub->get_name();
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tierswap::ctl;
  if (argc < 2) {
    print_help(stderr);
    return kExitUsage;
  }
  CLI::App app("Control and inspect tierswap, the tiered swap manager.", "tierswapctl");
  app.set_help_flag();
  bool help = false;
  app.add_flag("-h,--help", help);
  app.set_version_flag("--version", std::string("tierswapctl ") + TIERSWAP_VERSION);
  app.allow_extras();
  app.require_subcommand(0, 1);
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs;
  for (const auto& c : commands()) {
    CLI::App* sub = app.add_subcommand(std::string(c.name), std::string(c.summary));
    if (!c.alias.empty()) sub->alias(std::string(c.alias));
    runs.emplace_back(sub, c.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForVersion& e) {
    std::printf("%s\n", e.what());
    return kExitOk;
  } catch (const CLI::ArgumentMismatch& e) {
    // "--root: 1 required TEXT missing": an option given without its value.
    const std::string what = e.what();
    const std::string opt = what.substr(0, what.find(':'));
    usage_error(failing_command(app), opt + " needs a value");
    return kExitUsage;
  } catch (const CLI::ParseError& e) {
    const std::string cmd = failing_command(app);
    std::fprintf(stderr, "tierswapctl%s%s: %s (see tierswapctl %s--help)\n", cmd.empty() ? "" : " ",
                 cmd.c_str(), e.what(), cmd.empty() ? "" : (cmd + " ").c_str());
    return kExitUsage;
  }
  for (auto& [sub, run] : runs)
    if (sub->parsed()) return run();
  if (help || (argc == 2 && std::string(argv[1]) == "help")) {
    print_help(stdout);
    return kExitOk;
  }
  const auto& rest = app.remaining();
  const std::string first = rest.empty() ? std::string() : rest.front();
  if (first.size() > 1 && first[0] == '-')
    std::fprintf(stderr, "tierswapctl: unknown option \"%s\" (see tierswapctl --help)\n", first.c_str());
  else
    std::fprintf(stderr, "tierswapctl: unknown command \"%s\" (see tierswapctl --help)\n", first.c_str());
  return kExitUsage;
}
