// Tiny option parsing shared by the D-Bus commands: flags, --key VALUE and
// positionals, with a usage error that names the bad option.
#pragma once

#include <cstdio>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace tierswap::ctl {

struct ParsedArgs {
  std::set<std::string> flags;                               // "--json"
  std::vector<std::pair<std::string, std::string>> options;  // "--root", "DIR"
  std::vector<std::string> positionals;
  bool help = false;

  [[nodiscard]] bool has(const std::string& f) const { return flags.count(f) != 0; }
  [[nodiscard]] std::optional<std::string> get(const std::string& k) const {
    for (auto it = options.rbegin(); it != options.rend(); ++it)
      if (it->first == k) return it->second;
    return std::nullopt;
  }
};

// Returns nullopt (after printing "tierswapctl CMD: ...") on a usage error.
inline std::optional<ParsedArgs> parse_args(const char* cmd, std::span<const std::string> args,
                                            const std::set<std::string>& flags,
                                            const std::set<std::string>& valued = {}) {
  ParsedArgs p;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      p.help = true;
    } else if (flags.count(a)) {
      p.flags.insert(a);
    } else if (valued.count(a)) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "tierswapctl %s: %s needs a value (see tierswapctl %s --help)\n", cmd, a.c_str(),
                     cmd);
        return std::nullopt;
      }
      p.options.emplace_back(a, args[++i]);
    } else if (auto eq = a.find('=');
               a.rfind("--", 0) == 0 && eq != std::string::npos && valued.count(a.substr(0, eq))) {
      p.options.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    } else if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::fprintf(stderr, "tierswapctl %s: unknown option \"%s\" (see tierswapctl %s --help)\n", cmd,
                   a.c_str(), cmd);
      return std::nullopt;
    } else {
      p.positionals.push_back(a);
    }
  }
  return p;
}

// FILE [--root DIR] [--json] (check, plan): one FILE, a root defaulting to "/".
// Returns nullopt (after printing the usage error) when the arguments are off.
struct FileArgs {
  std::string file, root = "/";
  bool json = false, help = false;
};

inline std::optional<FileArgs> parse_file_args(const char* cmd, std::span<const std::string> args,
                                               bool allow_json) {
  auto p = parse_args(cmd, args, allow_json ? std::set<std::string>{"--json"} : std::set<std::string>{},
                      {"--root"});
  if (!p) return std::nullopt;
  FileArgs a;
  a.help = p->help;
  a.json = p->has("--json");
  a.root = p->get("--root").value_or("/");
  if (a.help) return a;
  if (p->positionals.size() != 1) {
    std::fprintf(stderr, "tierswapctl %s: %s (see tierswapctl %s --help)\n", cmd,
                 p->positionals.empty() ? "missing FILE" : "more than one FILE", cmd);
    return std::nullopt;
  }
  a.file = p->positionals.front();
  return a;
}

}  // namespace tierswap::ctl
