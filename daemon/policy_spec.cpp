#include "daemon/policy_spec.hpp"

namespace tierswap {

policy::PolicySpec to_policy_spec(const config::PolicySettings& s) {
  policy::PolicySpec p;
  p.reserve_bytes = static_cast<std::uint64_t>(s.reserve_mib) << 20;
  p.foreign_vram_bytes = static_cast<std::uint64_t>(s.foreign_vram_mib) << 20;
  p.latency_p99_us = static_cast<std::uint64_t>(s.latency_p99_us);
  p.io_pressure_percent = static_cast<double>(s.io_pressure_percent);
  p.on_battery = s.on_battery;
  p.cgroup_full_percent = static_cast<double>(s.cgroup_full_percent);
  p.swap_in_pages_per_s = static_cast<double>(s.swap_in_pages_per_s);
  p.cooldown_ms = static_cast<std::uint64_t>(s.cooldown_seconds) * 1000;
  p.hysteresis_percent = static_cast<unsigned>(s.hysteresis_percent);
  p.max_transitions_per_hour = static_cast<unsigned>(s.max_transitions_per_hour);
  return p;
}

void add_tier_reserves(policy::PolicySpec& p, const std::vector<TierReserveSource>& tiers,
                       const config::PolicySettings& s, const std::vector<policy::VramTierSample>& vram) {
  for (const auto& t : tiers) {
    if (t.text.empty()) continue;  // policy.reserve_mib: reserve_bytes already
    std::uint64_t total = 0;
    for (const auto& g : vram)
      if (g.tier == t.tier) total = g.vram_total_bytes;
    const auto r = config::tier_reserve(t.text, t.bytes, s, total);
    if (r.resolved) p.tier_reserve_bytes[t.tier] = r.bytes;
  }
}

}  // namespace tierswap
