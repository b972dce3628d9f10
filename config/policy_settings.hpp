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

#include <string>
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

// One line of `tierswapctl plan`'s policy section.
struct PolicySettingLine {
  std::string key;     // "policy.reserve_mib"
  std::string value;   // "1024"
  std::string origin;  // "file", "profile desktop", "default"
};

// Every policy key with its effective value and where it came from, in the
// order of tierswap.yaml(5).
std::vector<PolicySettingLine> policy_setting_lines(const Spec& spec);

}  // namespace tierswap::config
