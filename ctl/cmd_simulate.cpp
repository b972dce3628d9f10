// tierswapctl simulate TRACE [--config FILE] [--json]: replay a recorded
// policy trace (JSON lines, policy/trace.hpp) through policy::decide() and
// print every action with its time and reason. Touches nothing.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "backends/hostfs/host_fs.hpp"
#include "backends/hostfs/paths.hpp"
#include "common/json.hpp"
#include "config/loader.hpp"
#include "config/policy_settings.hpp"
#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "daemon/policy_spec.hpp"
#include "policy/decide.hpp"
#include "policy/meminfo.hpp"
#include "policy/trace.hpp"

namespace tierswap::ctl {
namespace {

// Traces of a day at one snapshot a second are about 30 MiB.
constexpr std::streamsize kMaxTraceBytes = 1LL << 30;

// The policy FILE sets (over its profile's defaults); without FILE the
// defaults of no profile. False after printing the diagnostics.
bool policy_settings(const std::string& file, config::PolicySettings& out,
                     std::vector<TierReserveSource>& reserves) {
  if (file.empty()) {
    out = config::policy_defaults(config::Profile::none);
    return true;
  }
  // Size expressions of the file's tiers need this machine's RAM.
  config::HostFacts host;
  const HostFs fs("/");
  if (auto text = fs.read(paths::proc_meminfo))
    if (auto mem = policy::parse_meminfo(*text)) host.ram_bytes = mem->mem_total();
  const auto lr = config::load_file(file, host);
  // Errors only: the config's warnings (tiers, zswap) are `check`'s business.
  for (const auto& d : lr.diagnostics)
    if (d.severity == config::Severity::error)
      std::fprintf(stderr, "%s\n", config::format_diagnostic(d).c_str());
  if (!lr.spec) return false;
  out = config::effective_policy(*lr.spec);
  for (const auto& t : lr.spec->tiers)
    if (t.kind == config::TierKind::vram) reserves.push_back({t.name, t.reserve_text, t.reserve_bytes});
  return true;
}

bool read_trace(const std::string& path, std::string& text) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::fprintf(stderr, "tierswapctl simulate: %s: is a directory, not a trace\n", path.c_str());
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "tierswapctl simulate: %s: cannot read the trace\n", path.c_str());
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  text = ss.str();
  if (static_cast<std::streamsize>(text.size()) > kMaxTraceBytes) {
    std::fprintf(stderr, "tierswapctl simulate: %s: larger than 1 GiB\n", path.c_str());
    return false;
  }
  return true;
}

std::string actions_json(const std::vector<policy::Action>& actions) {
  std::string out;
  for (const auto& a : actions) {
    const Json j = {{"t_ms", a.time_ms}, {"time", policy::format_time(a.time_ms)},
                    {"tier", a.tier},    {"action", policy::to_string(a.kind)},
                    {"rule", a.rule},    {"why", a.why}};
    out += dump_json(j, false) + "\n";
  }
  return out;
}

constexpr const char* kHelp =
    "Usage: tierswapctl simulate TRACE [--config FILE] [--json]\n"
    "Replays TRACE (JSON lines, one snapshot per line; see tierswapctl(8)) through\n"
    "the policy engine and prints each action: time since the trace start, tier,\n"
    "evacuate or promote, the rule and the numbers that decided. Touches nothing.\n\n"
    "  --config FILE  use the policy: settings of FILE (and its profile's defaults);\n"
    "                 without it, the defaults\n"
    "  --json         one JSON object per action and line\n\n"
    "Exit status: 0 replayed, 1 TRACE or FILE is invalid (errors on stderr), 2 usage.\n";

std::function<int()> setup_simulate(CLI::App& sub) {
  struct Args {
    std::string trace, config;
    bool json = false;
    std::shared_ptr<bool> help;
  };
  auto a = std::make_shared<Args>();
  a->help = own_help(sub);
  sub.add_option("TRACE", a->trace, "the trace to replay");
  sub.add_option("--config", a->config, "the config whose policy: to use");
  sub.add_flag("--json", a->json, "print JSON lines");
  return [&sub, a] {
    if (*a->help) {
      std::fputs(kHelp, stdout);
      return kExitOk;
    }
    if (!check_leftovers(sub, "more than one TRACE")) return kExitUsage;
    if (a->trace.empty()) {
      usage_error(sub.get_name(), "missing TRACE");
      return kExitUsage;
    }
    config::PolicySettings settings;
    std::vector<TierReserveSource> reserves;
    if (!policy_settings(a->config, settings, reserves)) return kExitFailed;
    std::string text;
    if (!read_trace(a->trace, text)) return kExitFailed;
    const auto trace = policy::parse_trace(text, a->trace);
    if (!trace) {
      std::fprintf(stderr, "tierswapctl simulate: %s\n", trace.error().message.c_str());
      return kExitFailed;
    }
    // Each vram tier's own reserve; one that depends on the card's size is
    // resolved on the trace's first sample of the tier.
    auto spec = to_policy_spec(settings);
    add_tier_reserves(spec, reserves, settings,
                      trace->empty() ? std::vector<policy::VramTierSample>{} : trace->front().vram);
    const auto actions = policy::simulate(*trace, spec);
    std::string out;
    if (a->json) {
      out = actions_json(actions);
    } else {
      for (const auto& act : actions) out += policy::format_action(act) + "\n";
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
  };
}

const Registrar reg{{"simulate", "TRACE [--config FILE] [--json]",
                     "replay a policy trace and print the actions it causes", &setup_simulate}};

}  // namespace
}  // namespace tierswap::ctl
