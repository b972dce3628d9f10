// The runtime policy's settings as a config says them: `policy:` keys over
// the profile's defaults. The policy engine's own types stay in policy/
// (config does not include it); the daemon and `tierswapctl simulate` copy
// these values into policy::PolicySpec.
//
// Defaults (every profile), overridable one key at a time under `policy:`:
//   reserve_mib 1024, foreign_vram_mib 2048, latency_p99_us 2000,
//   io_pressure_percent 20, cgroup_full_percent 10, swap_in_pages_per_s 0,
//   cooldown_seconds 300, hysteresis_percent 20,
//   max_transitions_per_hour 4;
//   on_battery: true for desktop, gpu-workstation and no profile (the
//   profiles laptops use), false for server, db and k8s-node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/spec.hpp"

namespace tierswap::config {

struct PolicySettings {
  long long reserve_mib = 1024;
  long long foreign_vram_mib = 2048;
  long long latency_p99_us = 2000;
  long long io_pressure_percent = 20;
  long long cgroup_full_percent = 10;  // 0: rule off
  long long swap_in_pages_per_s = 0;   // 0: the cgroup rule's swap-in arm off
  bool on_battery = true;
  long long cooldown_seconds = 300;
  long long hysteresis_percent = 20;
  long long max_transitions_per_hour = 4;
};

// The defaults of profile `p`.
PolicySettings policy_defaults(Profile p);

// spec.policy's keys over policy_defaults(spec.profile).
PolicySettings effective_policy(const Spec& spec);

// A vram tier's reserve: VRAM always left free on its card for other
// programs. Precedence: the tier's own `reserve:` key, else
// policy.reserve_mib (which is also what a tier without the key had before
// tiers could say it). "10% of vram" is resolved against `vram_bytes`, the
// card's memory; while that is 0 (not known) `resolved` is false and bytes 0.
struct TierReserve {
  std::uint64_t bytes = 0;
  bool resolved = true;
  std::string key;   // where it came from: "reserve" (the tier's key) or "policy.reserve_mib"
  std::string text;  // as written ("10% of vram"), or "1024 MiB" for policy.reserve_mib
};
TierReserve tier_reserve(std::string_view reserve_text, std::optional<std::uint64_t> reserve_bytes,
                         const PolicySettings& policy, std::uint64_t vram_bytes);
inline TierReserve tier_reserve(const Tier& t, const PolicySettings& policy, std::uint64_t vram_bytes) {
  return tier_reserve(t.reserve_text, t.reserve_bytes, policy, vram_bytes);
}

// One line of `tierswapctl plan`'s policy section.
struct PolicySettingLine {
  std::string key;     // "policy.reserve_mib"
  std::string value;   // "1024"
  std::string origin;  // "file", "profile desktop", "default"
};

// Every policy key with its effective value and where it came from, in the
// order of tierswap.yaml(5); then each vram tier's reserve
// ("tiers.NAME.reserve" = "2G" (file), or = "1024 MiB" (policy.reserve_mib)).
std::vector<PolicySettingLine> policy_setting_lines(const Spec& spec);

}  // namespace tierswap::config
