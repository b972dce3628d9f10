// `policy:` in tierswap.yaml: the schema's keys and ranges, errors naming
// the key, the per-profile defaults and the effective settings plan shows.
#include <gtest/gtest.h>

#include <algorithm>

#include "config/loader.hpp"
#include "config/policy_settings.hpp"
#include "config/schema.hpp"

namespace tierswap::config {
namespace {

const HostFacts kHost{.ram_bytes = 16ULL << 30};

LoadResult load(const std::string& yaml) {
  return load_string(yaml, "t.yaml", kHost);
}

std::string errors(const std::string& yaml) {
  std::string out;
  for (const auto& d : load(yaml).diagnostics) out += format_diagnostic(d) + "\n";
  return out;
}

TEST(PolicyConfig, DefaultsPerProfile) {
  EXPECT_TRUE(policy_defaults(Profile::none).on_battery);
  EXPECT_TRUE(policy_defaults(Profile::desktop).on_battery);
  EXPECT_TRUE(policy_defaults(Profile::gpu_workstation).on_battery);
  EXPECT_FALSE(policy_defaults(Profile::server).on_battery);
  EXPECT_FALSE(policy_defaults(Profile::db).on_battery);
  EXPECT_FALSE(policy_defaults(Profile::k8s_node).on_battery);
  const auto lr = load("profile: server\n");
  ASSERT_TRUE(lr.spec);
  const PolicySettings s = effective_policy(*lr.spec);
  EXPECT_FALSE(s.on_battery);
  EXPECT_EQ(s.reserve_mib, 1024);
  EXPECT_EQ(s.max_transitions_per_hour, 4);
}

TEST(PolicyConfig, FileKeysOverrideOneByOne) {
  const auto lr = load(
      "profile: desktop\npolicy:\n  reserve_mib: 2048\n  foreign_vram_mib: 0\n  latency_p99_us: 900\n"
      "  io_pressure_percent: 35\n  on_battery: off\n  cooldown_seconds: 60\n  hysteresis_percent: 10\n"
      "  max_transitions_per_hour: 6\n");
  ASSERT_TRUE(lr.spec) << (lr.diagnostics.empty() ? "" : format_diagnostic(lr.diagnostics[0]));
  const PolicySettings s = effective_policy(*lr.spec);
  EXPECT_EQ(s.reserve_mib, 2048);
  EXPECT_EQ(s.foreign_vram_mib, 0);
  EXPECT_EQ(s.latency_p99_us, 900);
  EXPECT_EQ(s.io_pressure_percent, 35);
  EXPECT_FALSE(s.on_battery);
  EXPECT_EQ(s.cooldown_seconds, 60);
  EXPECT_EQ(s.hysteresis_percent, 10);
  EXPECT_EQ(s.max_transitions_per_hour, 6);
}

TEST(PolicyConfig, PlanLinesSayWhereEachValueCameFrom) {
  const auto lr = load("profile: gpu-workstation\npolicy:\n  cooldown_seconds: 60\n");
  ASSERT_TRUE(lr.spec);
  const auto lines = policy_setting_lines(*lr.spec);
  ASSERT_EQ(lines.size(), 11u);  // the 10 keys, then the profile's vram tier's reserve
  auto find = [&](const std::string& key) {
    auto it = std::find_if(lines.begin(), lines.end(), [&](const auto& l) { return l.key == key; });
    return it == lines.end() ? std::string("(missing)") : it->value + " (" + it->origin + ")";
  };
  EXPECT_EQ(find("policy.cooldown_seconds"), "60 (file)");
  EXPECT_EQ(find("policy.on_battery"), "true (profile gpu-workstation)");
  EXPECT_EQ(find("policy.reserve_mib"), "1024 (default)");
  EXPECT_EQ(find("tiers.vram.reserve"), "1024 MiB (policy.reserve_mib)");
  EXPECT_EQ(find("policy.cgroup_full_percent"), "10 (default)");
  EXPECT_EQ(find("policy.swap_in_pages_per_s"), "0 (default)");
}

// The cgroup rule's keys: defaults, overrides, ranges, and the spec the
// daemon and simulate decide with.
TEST(PolicyConfig, CgroupRuleKeys) {
  const auto lr = load("policy:\n  cgroup_full_percent: 25\n  swap_in_pages_per_s: 4096\n");
  ASSERT_TRUE(lr.spec) << (lr.diagnostics.empty() ? "" : format_diagnostic(lr.diagnostics[0]));
  const PolicySettings s = effective_policy(*lr.spec);
  EXPECT_EQ(s.cgroup_full_percent, 25);
  EXPECT_EQ(s.swap_in_pages_per_s, 4096);
  const auto lines = policy_setting_lines(*lr.spec);
  const auto at = std::find_if(lines.begin(), lines.end(),
                               [](const auto& l) { return l.key == "policy.cgroup_full_percent"; });
  ASSERT_NE(at, lines.end());
  EXPECT_EQ(at->value + " " + at->origin, "25 file");
  EXPECT_TRUE(load("policy:\n  cgroup_full_percent: 0\n").spec);  // rule off
  EXPECT_EQ(errors("policy:\n  cgroup_full_percent: 101\n"),
            "t.yaml:2:24: policy.cgroup_full_percent: 101 is out of range (allowed: 0..100)\n");
  EXPECT_EQ(errors("policy:\n  swap_in_pages_per_s: -1\n"),
            "t.yaml:2:24: policy.swap_in_pages_per_s: -1 is out of range (allowed: 0..10000000)\n");
}

TEST(PolicyConfig, ErrorsNameTheKey) {
  EXPECT_EQ(errors("policy:\n  hysteresis_percent: 95\n"),
            "t.yaml:2:23: policy.hysteresis_percent: 95 is out of range (allowed: 0..90)\n");
  EXPECT_EQ(errors("policy:\n  max_transitions_per_hour: 1\n"),
            "t.yaml:2:29: policy.max_transitions_per_hour: 1 is out of range (allowed: 2..60)\n");
  EXPECT_EQ(errors("policy:\n  on_battery: maybe\n"),
            "t.yaml:2:15: policy.on_battery: expected true or false, got \"maybe\"\n");
  EXPECT_EQ(errors("policy:\n  reserve_mb: 1024\n"),
            "t.yaml:2:3: policy.reserve_mb: unknown key (did you mean \"reserve_mib\"?)\n");
  EXPECT_NE(errors("policy:\n  reserve: 1024\n")
                .find("t.yaml:2:3: policy.reserve: unknown key (allowed: reserve_mib,"),
            std::string::npos);
  EXPECT_NE(errors("policy: 5\n").find("t.yaml:1:9: policy: expected a map"), std::string::npos);
  EXPECT_FALSE(load("policy:\n  reserve_mib: -1\n").spec);
}

TEST(PolicyConfig, SchemaListsThePolicyKeys) {
  const auto keys = schema_key_paths();
  for (const char* key : {"policy", "policy.reserve_mib", "policy.foreign_vram_mib", "policy.latency_p99_us",
                          "policy.io_pressure_percent", "policy.on_battery", "policy.cooldown_seconds",
                          "policy.hysteresis_percent", "policy.max_transitions_per_hour",
                          "policy.cgroup_full_percent", "policy.swap_in_pages_per_s"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
}

}  // namespace
}  // namespace tierswap::config
