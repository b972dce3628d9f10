#include "config/policy_settings.hpp"

#include "config/size_expr.hpp"

namespace tierswap::config {

PolicySettings policy_defaults(Profile p) {
  PolicySettings s;
  // Servers (and the db and k8s-node recipes) do not run on battery but
  // may see a UPS report as one: keeping the VRAM tier there is the safe
  // default. Desktops and laptops share a profile; on a laptop the GPU's
  // power draw while swapping is what the rule saves.
  s.on_battery = p == Profile::none || p == Profile::desktop || p == Profile::gpu_workstation;
  return s;
}

PolicySettings effective_policy(const Spec& spec) {
  PolicySettings s = policy_defaults(spec.profile);
  const PolicyKeys& k = spec.policy;
  auto take = [](long long& into, const std::optional<long long>& v) {
    if (v) into = *v;
  };
  take(s.reserve_mib, k.reserve_mib);
  take(s.foreign_vram_mib, k.foreign_vram_mib);
  take(s.latency_p99_us, k.latency_p99_us);
  take(s.io_pressure_percent, k.io_pressure_percent);
  if (k.on_battery) s.on_battery = *k.on_battery;
  take(s.cgroup_full_percent, k.cgroup_full_percent);
  take(s.swap_in_pages_per_s, k.swap_in_pages_per_s);
  take(s.cooldown_seconds, k.cooldown_seconds);
  take(s.hysteresis_percent, k.hysteresis_percent);
  take(s.max_transitions_per_hour, k.max_transitions_per_hour);
  return s;
}

std::vector<PolicySettingLine> policy_setting_lines(const Spec& spec) {
  const PolicySettings s = effective_policy(spec);
  const std::string profile_origin = spec.profile == Profile::none
                                         ? std::string("default")
                                         : std::string("profile ") + to_string(spec.profile);
  auto origin = [&](const char* key, bool per_profile) {
    if (spec.policy.locs.contains(key)) return std::string("file");
    return per_profile ? profile_origin : std::string("default");
  };
  std::vector<PolicySettingLine> out;
  auto num = [&](const char* key, long long v) {
    out.push_back({std::string("policy.") + key, std::to_string(v), origin(key, false)});
  };
  num("reserve_mib", s.reserve_mib);
  num("foreign_vram_mib", s.foreign_vram_mib);
  num("latency_p99_us", s.latency_p99_us);
  num("io_pressure_percent", s.io_pressure_percent);
  num("cgroup_full_percent", s.cgroup_full_percent);
  num("swap_in_pages_per_s", s.swap_in_pages_per_s);
  out.push_back({"policy.on_battery", s.on_battery ? "true" : "false", origin("on_battery", true)});
  num("cooldown_seconds", s.cooldown_seconds);
  num("hysteresis_percent", s.hysteresis_percent);
  num("max_transitions_per_hour", s.max_transitions_per_hour);
  for (const auto& t : spec.tiers) {
    if (t.kind != TierKind::vram) continue;
    const TierReserve r = tier_reserve(t, s, 0);
    out.push_back({"tiers." + t.name + ".reserve", r.text, r.key == "reserve" ? "file" : r.key});
  }
  return out;
}

TierReserve tier_reserve(std::string_view reserve_text, std::optional<std::uint64_t> reserve_bytes,
                         const PolicySettings& policy, std::uint64_t vram_bytes) {
  if (reserve_text.empty()) {
    const auto mib = static_cast<std::uint64_t>(policy.reserve_mib);
    return {mib << 20, true, "policy.reserve_mib", std::to_string(mib) + " MiB"};
  }
  TierReserve r{0, true, "reserve", std::string(reserve_text)};
  if (reserve_bytes) {
    r.bytes = *reserve_bytes;
    return r;
  }
  // Checked at load; only the card's size was missing.
  auto v = evaluate_size(reserve_text, HostFacts{.ram_bytes = 1, .vram_bytes = vram_bytes},
                         SizeOptions{.allow_vram = true});
  if (!v || !v->resolved || vram_bytes == 0) {
    r.resolved = false;
    return r;
  }
  r.bytes = v->bytes;
  return r;
}

}  // namespace tierswap::config
