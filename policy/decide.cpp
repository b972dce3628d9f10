#include "policy/decide.hpp"

#include <cstdio>
#include <string>
#include <utility>

#include "common/byte_format.hpp"

namespace tierswap::policy {
namespace {

std::string percent(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", p);
  return buf;
}

std::string seconds(std::uint64_t ms) {
  char buf[32];
  if (ms % 1000 == 0)
    std::snprintf(buf, sizeof buf, "%llu s", static_cast<unsigned long long>(ms / 1000));
  else
    std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

struct Verdict {
  std::string rule;
  std::string why;
};

std::string rate(double pages_per_s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", pages_per_s);
  return buf;
}

// The named cgroup whose memory stalls most (full avg10; the first by name
// on a tie), if any is named.
const std::pair<const std::string, Pressure>* most_stalled(const Snapshot& s) {
  const std::pair<const std::string, Pressure>* worst = nullptr;
  for (const auto& c : s.cgroup_memory)
    if (!worst || c.second.full_avg10 > worst->second.full_avg10) worst = &c;
  return worst;
}

std::optional<Verdict> cgroup_rule(const Snapshot& s, const VramTierSample& g, const PolicySpec& spec) {
  if (spec.cgroup_full_percent <= 0) return std::nullopt;
  const auto* worst = most_stalled(s);
  if (!worst || worst->second.full_avg10 < spec.cgroup_full_percent) return std::nullopt;
  // A tier that holds no page cannot be what the cgroup waits for.
  if (auto used = s.swap_used_bytes.find(g.tier); used != s.swap_used_bytes.end() && used->second == 0)
    return std::nullopt;
  std::string cause;
  if (spec.latency_p99_us != 0 && g.p99_latency_us > spec.latency_p99_us)
    cause = "the tier's p99 latency " + std::to_string(g.p99_latency_us) + " us is over the budget " +
            std::to_string(spec.latency_p99_us) + " us";
  else if (spec.swap_in_pages_per_s > 0 && s.swap_in_pages_per_s >= spec.swap_in_pages_per_s)
    cause = rate(s.swap_in_pages_per_s) + " pages/s are swapped in (threshold " +
            rate(spec.swap_in_pages_per_s) + ")";
  else
    return std::nullopt;
  return Verdict{"cgroup", worst->first + " stalls on memory (full " + percent(worst->second.full_avg10) +
                               ", threshold " + percent(spec.cgroup_full_percent) + ") while " + cause};
}

// The first evacuation rule that holds for an active tier, if any.
std::optional<Verdict> evacuation_rule(const Snapshot& s, const VramTierSample& g, const PolicySpec& spec) {
  // The GPU rules: the same test the daemon's GPU watch runs between ticks.
  if (const std::string rule = vram_rule(g, spec); rule == "reserve")
    return Verdict{"reserve", "free VRAM " + format_mib(g.vram_free_bytes) + " is below the reserve " +
                                  format_mib(reserve_of(spec, g.tier))};
  else if (rule == "foreign")
    return Verdict{"foreign", "other processes use " + format_mib(g.foreign_vram_bytes) + " of VRAM, past " +
                                  format_mib(spec.foreign_vram_bytes)};
  if (spec.latency_p99_us != 0 && g.p99_latency_us > spec.latency_p99_us &&
      s.io.some_avg10 >= spec.io_pressure_percent)
    return Verdict{"latency", "p99 latency " + std::to_string(g.p99_latency_us) + " us is over the budget " +
                                  std::to_string(spec.latency_p99_us) + " us while io pressure is " +
                                  percent(s.io.some_avg10) + " (threshold " +
                                  percent(spec.io_pressure_percent) + ")"};
  if (auto v = cgroup_rule(s, g, spec)) return v;
  if (spec.on_battery && s.on_battery) return Verdict{"on_battery", "the machine runs on battery"};
  return std::nullopt;
}

// Every rule clear by the hysteresis margin (for an evacuated tier).
bool calm(const Snapshot& s, const VramTierSample& g, const PolicySpec& spec) {
  const std::uint64_t h = spec.hysteresis_percent;
  const auto scaled = [](std::uint64_t v, std::uint64_t pct) {
    return static_cast<std::uint64_t>(static_cast<unsigned __int128>(v) * pct / 100);
  };
  if (g.vram_free_bytes < scaled(reserve_of(spec, g.tier), 100 + h) + g.tier_size_bytes) return false;
  if (spec.foreign_vram_bytes != 0 && g.foreign_vram_bytes > scaled(spec.foreign_vram_bytes, 100 - h))
    return false;
  if (spec.latency_p99_us != 0 &&
      s.io.some_avg10 > spec.io_pressure_percent * static_cast<double>(100 - h) / 100.0)
    return false;
  if (spec.cgroup_full_percent > 0)
    if (const auto* worst = most_stalled(s);
        worst && worst->second.full_avg10 > spec.cgroup_full_percent * static_cast<double>(100 - h) / 100.0)
      return false;
  if (spec.on_battery && s.on_battery) return false;
  return true;
}

std::string calm_why(const Snapshot& s, const VramTierSample& g, const PolicySpec& spec) {
  std::string why = "every rule clear for " + seconds(spec.cooldown_ms) + " (hysteresis " +
                    std::to_string(spec.hysteresis_percent) + "%): free VRAM " +
                    format_mib(g.vram_free_bytes) + ", others " + format_mib(g.foreign_vram_bytes) +
                    ", io pressure " + percent(s.io.some_avg10);
  if (spec.cgroup_full_percent > 0)
    if (const auto* worst = most_stalled(s))
      why += ", " + worst->first + " memory full " + percent(worst->second.full_avg10);
  if (spec.on_battery) why += ", on AC";
  return why;
}

}  // namespace

std::uint64_t reserve_of(const PolicySpec& spec, const std::string& tier) {
  const auto it = spec.tier_reserve_bytes.find(tier);
  return it == spec.tier_reserve_bytes.end() ? spec.reserve_bytes : it->second;
}

std::string vram_rule(const VramTierSample& g, const PolicySpec& spec) {
  if (g.vram_free_bytes < reserve_of(spec, g.tier)) return "reserve";
  if (spec.foreign_vram_bytes != 0 && g.foreign_vram_bytes > spec.foreign_vram_bytes) return "foreign";
  return {};
}

const char* to_string(Mode m) {
  return m == Mode::active ? "active" : "evacuated";
}

const char* to_string(ActionKind k) {
  return k == ActionKind::evacuate ? "evacuate" : "promote";
}

Decision decide(const Snapshot& snapshot, const PolicyState& state, const PolicySpec& spec) {
  Decision d{{}, state};
  const std::uint64_t now = snapshot.time_ms;
  const bool busy = snapshot.reload_running || snapshot.user_demote_running;
  for (const VramTierSample& g : snapshot.vram) {
    auto [it, fresh] = d.next.tiers.try_emplace(g.tier, TierState{Mode::active, now, std::nullopt, {}});
    TierState& t = it->second;
    std::erase_if(t.transitions_ms, [&](std::uint64_t at) { return at + kHourMs <= now; });
    if (busy) {
      t.calm_since_ms.reset();
      continue;
    }
    if (t.mode == Mode::active) {
      if (auto v = evacuation_rule(snapshot, g, spec)) {
        t = TierState{Mode::evacuated, now, std::nullopt, std::move(t.transitions_ms)};
        t.transitions_ms.push_back(now);
        d.actions.push_back(Action{now, g.tier, ActionKind::evacuate, std::move(v->rule), std::move(v->why)});
      }
      continue;
    }
    if (!calm(snapshot, g, spec)) {
      t.calm_since_ms.reset();
      continue;
    }
    if (!t.calm_since_ms) t.calm_since_ms = now;
    if (now - *t.calm_since_ms < spec.cooldown_ms) continue;
    if (t.transitions_ms.size() + 2 > spec.max_transitions_per_hour) continue;
    t = TierState{Mode::active, now, std::nullopt, std::move(t.transitions_ms)};
    t.transitions_ms.push_back(now);
    d.actions.push_back(Action{now, g.tier, ActionKind::promote, "cooldown", calm_why(snapshot, g, spec)});
  }
  return d;
}

std::vector<Action> simulate(const std::vector<Snapshot>& trace, const PolicySpec& spec) {
  std::vector<Action> out;
  PolicyState state;
  for (const Snapshot& s : trace) {
    Decision d = decide(s, state, spec);
    for (auto& a : d.actions) out.push_back(std::move(a));
    state = std::move(d.next);
  }
  return out;
}

std::string format_time(std::uint64_t ms) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02llu:%02llu:%02llu.%03llu", static_cast<unsigned long long>(ms / kHourMs),
                static_cast<unsigned long long>(ms / 60'000 % 60),
                static_cast<unsigned long long>(ms / 1000 % 60), static_cast<unsigned long long>(ms % 1000));
  return buf;
}

std::string format_action(const Action& a) {
  return format_time(a.time_ms) + "  " + a.tier + "  " + to_string(a.kind) + "  " + a.rule + "  " + a.why;
}

}  // namespace tierswap::policy
