// tierswapctl plan FILE [--root DIR] [--json]: print what applying FILE would
// do on this machine, touching nothing, and which settings FILE's profile
// supplies (the ones the file does not set itself).
#include <cstdio>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "backends/hostfs/paths.hpp"
#include "common/json.hpp"
#include "config/loader.hpp"
#include "config/policy_settings.hpp"
#include "config/profiles.hpp"
#include "ctl/file_command.hpp"
#include "daemon/plan_ops.hpp"
#include "policy/meminfo.hpp"

namespace tierswap::ctl {
namespace {

struct FromProfile {
  config::Profile profile = config::Profile::none;
  std::vector<config::ProfileSetting> settings;
  std::vector<config::PolicySettingLine> policy;  // the effective policy: settings
};

// plan_file() keeps its Spec to itself: load FILE once more, against the
// same RAM, for what its profile supplied. Called only after plan_file()
// succeeded, so the load does too; on any surprise the list stays empty.
FromProfile from_profile(const std::string& file, const std::string& root) {
  FromProfile out;
  const HostFs fs(root);
  auto text = fs.read(paths::proc_meminfo);
  auto mem = text ? policy::parse_meminfo(*text) : Result<policy::Meminfo>(std::unexpected(text.error()));
  if (!mem) return out;
  auto lr = config::load_file(file, config::HostFacts{.ram_bytes = mem->mem_total()});
  if (!lr.spec) return out;
  out.profile = lr.spec->profile;
  out.settings = config::profile_settings(*lr.spec);
  out.policy = config::policy_setting_lines(*lr.spec);
  return out;
}

std::string policy_text(const FromProfile& p) {
  if (p.policy.empty()) return {};
  std::string out = "\npolicy (the runtime rules; tierswapctl simulate replays a trace with them):\n";
  for (const auto& s : p.policy) out += "  " + s.key + " = " + s.value + " (" + s.origin + ")\n";
  return out;
}

std::string profile_text(const FromProfile& p) {
  if (p.profile == config::Profile::none) return policy_text(p);
  std::string out =
      std::string("\nfrom profile ") + config::to_string(p.profile) + " (not set in the file):\n";
  if (p.settings.empty()) out += "  nothing: the file sets every key the profile has\n";
  for (const auto& s : p.settings) out += "  " + s.key + " = " + s.value + "\n";
  return out + policy_text(p);
}

// plan_document()'s object with "profile": {"name", "settings": [{key, value}],
// "policy": [{key, value, origin}]} added as its last key ("name" is "none"
// without a profile; "policy" lists every effective policy: setting).
std::string with_profile_json(Json plan, const FromProfile& p) {
  Json settings = Json::array();
  for (const auto& s : p.settings) settings.push_back({{"key", s.key}, {"value", s.value}});
  Json policy = Json::array();
  for (const auto& s : p.policy) policy.push_back({{"key", s.key}, {"value", s.value}, {"origin", s.origin}});
  plan["profile"] = {{"name", config::to_string(p.profile)},
                     {"settings", std::move(settings)},
                     {"policy", std::move(policy)}};
  return dump_json(plan, true);
}

constexpr const char* kHelp =
    "Usage: tierswapctl plan FILE [--root DIR] [--json]\n"
    "Prints the ordered steps (each with its undo) that applying FILE would take on\n"
    "this machine, given what tierswapd already set up (/run/tierswap/state.json),\n"
    "then the settings FILE's profile supplies (those the file does not set; a\n"
    "tiers: list in the file replaces the profile's tiers). Touches nothing.\n\n"
    "  --root DIR   plan against the machine under DIR (a fake /sys, /proc, /dev, /run)\n"
    "  --json       print the plan as JSON\n\n"
    "Exit status: 0 planned, 1 the config is invalid here (errors on stderr), 2 usage.\n";

std::function<int()> setup_plan(CLI::App& sub) {
  return file_command(sub, kHelp, true, [](const FileArgs& a, const FilePlan& r) {
    const FromProfile prof = from_profile(a.file, a.root);
    const std::string out =
        a.json ? with_profile_json(plan_document(r.plan), prof) : plan_to_text(r.plan) + profile_text(prof);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
  });
}

const Registrar reg{
    {"plan", "FILE [--root DIR] [--json]", "print the steps applying a config would take", &setup_plan}};

}  // namespace
}  // namespace tierswap::ctl
