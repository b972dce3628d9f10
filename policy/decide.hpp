// policy::decide(): the policy engine's rules as a pure function.
//
//   Decision d = decide(snapshot, state, spec);   // same inputs, same outputs
//
// No clock, file or thread inside: time comes from Snapshot::time_ms, memory
// of the past from PolicyState (which the caller keeps and passes back as
// d.next). The daemon's executor carries out d.actions; tierswapctl simulate
// replays a trace through it (simulate() below).
//
// Rules, per VRAM tier, checked in this order on every snapshot; the first
// that holds evacuates an active tier (one action per tier per snapshot):
//   reserve     free VRAM < the tier's reserve (reserve_of())
//   foreign     other processes' VRAM > foreign_vram_bytes (0: rule off)
//   latency     tier p99 > latency_p99_us while PSI io some avg10 >=
//               io_pressure_percent (latency_p99_us 0: rule off)
//   cgroup      a cgroup the config names (Snapshot::cgroup_memory) has
//               memory full avg10 >= cgroup_full_percent, the tier holds
//               pages (its swap use is not known to be 0), and either its
//               p99 > latency_p99_us (latency_p99_us 0: that arm off) or
//               the machine swaps in >= swap_in_pages_per_s (0: that arm
//               off); cgroup_full_percent 0: rule off. No cgroup named (or
//               none whose memory.pressure the kernel has): never holds.
//   on_battery  the machine runs on battery and spec.on_battery is set
// Promote (rule "cooldown"): an evacuated tier comes back once every rule
// has been clear by the hysteresis margin for cooldown_ms without a break:
//   free VRAM >= reserve * (100 + h) / 100 + the tier's own size,
//   foreign <= threshold * (100 - h) / 100, io some avg10 <=
//   io_pressure_percent * (100 - h) / 100 (the tier's own latency means
//   nothing while it is evacuated), every named cgroup's memory full avg10
//   <= cgroup_full_percent * (100 - h) / 100 (when that rule is on), and on
//   AC (when spec.on_battery).
// Bound: transitions of a tier within any hour never exceed
// max_transitions_per_hour. Evacuations are never refused (giving VRAM back
// is the safe direction); a promote waits until the last hour holds at most
// max - 2 transitions, so the evacuation that may follow still fits.
// Busy: while a reload or a user's demote runs, no action at all, and each
// tier's calm period starts again (a promote needs a full cool-down after).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/snapshot.hpp"

namespace tierswap::policy {

inline constexpr std::uint64_t kHourMs = 3'600'000;

struct PolicySpec {
  std::uint64_t reserve_bytes = 1024ULL << 20;  // a tier's reserve unless tier_reserve_bytes has it
  // Per VRAM tier (by name): its own `reserve:`, resolved on its card.
  std::map<std::string, std::uint64_t> tier_reserve_bytes;
  std::uint64_t foreign_vram_bytes = 2048ULL << 20;  // 0: rule off
  std::uint64_t latency_p99_us = 2000;               // 0: rule off
  double io_pressure_percent = 20;                   // PSI io some avg10
  bool on_battery = true;
  double cgroup_full_percent = 10;  // a named cgroup's memory full avg10; 0: rule off
  double swap_in_pages_per_s = 0;   // the cgroup rule's swap-in arm; 0: arm off
  std::uint64_t cooldown_ms = 300'000;
  unsigned hysteresis_percent = 20;       // 0..90
  unsigned max_transitions_per_hour = 4;  // >= 2
};

// The reserve of tier `tier`: tier_reserve_bytes's entry, else reserve_bytes.
std::uint64_t reserve_of(const PolicySpec& spec, const std::string& tier);

// The rules that read the GPU sample alone (reserve, foreign): the name of
// the first that holds for `g`, else empty. The daemon's GPU watch polls
// NVML between ticks with it, so that another program taking the VRAM is
// decided on at once rather than at the next tick (decide() still decides).
std::string vram_rule(const VramTierSample& g, const PolicySpec& spec);

enum class Mode { active, evacuated };
enum class ActionKind { evacuate, promote };

const char* to_string(Mode m);        // "active", "evacuated"
const char* to_string(ActionKind k);  // "evacuate", "promote"

struct TierState {
  Mode mode = Mode::active;
  std::uint64_t since_ms = 0;                  // when it entered `mode`
  std::optional<std::uint64_t> calm_since_ms;  // evacuated and every rule clear since
  std::vector<std::uint64_t> transitions_ms;   // within the last hour, oldest first
};

struct PolicyState {
  std::map<std::string, TierState> tiers;  // by tier name; a tier first seen starts active
};

struct Action {
  std::uint64_t time_ms = 0;
  std::string tier;
  ActionKind kind = ActionKind::evacuate;
  std::string rule;  // "reserve", "foreign", "latency", "cgroup", "on_battery", "cooldown"
  std::string why;   // a sentence with the numbers that decided
  friend bool operator==(const Action&, const Action&) = default;
};

struct Decision {
  std::vector<Action> actions;
  PolicyState next;
};

Decision decide(const Snapshot& snapshot, const PolicyState& state, const PolicySpec& spec);

// Replays `trace` (time order) through decide() from an empty state; every
// action in order.
std::vector<Action> simulate(const std::vector<Snapshot>& trace, const PolicySpec& spec);

// "HH:MM:SS.mmm" since the trace start (hours go past 24).
std::string format_time(std::uint64_t ms);

// One line for a person: "00:05:00.000  vram  evacuate  reserve  free VRAM ...".
std::string format_action(const Action& a);

}  // namespace tierswap::policy
