// StatusObserver: reads the machine once and builds from those reads both
// the Status the API serves and the policy::Snapshot the policy engine
// decides on (one Observation, immutable once built).
//
//   Status: tiers from the last applied config + the journal (state,
//   device, priority) + /proc/swaps (size, used) + zram mm_stat (stored,
//   ratio); PSI, meminfo, swappiness, swap rates from two /proc/vmstat
//   samples (the previous one is kept; rates are over at least 1 s).
//   Snapshot: PSI memory/io avg10, meminfo, each tier's swap used, the VRAM
//   samples and on_battery from the SignalProviders (tier sizes from the
//   config), and whether a reload or a user's demote runs.
//
// Thread-safety: observe() may be called from several threads (the vmstat
// sample it keeps is under a lock); the Engine serialises the rest.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "daemon/engine.hpp"
#include "daemon/signal_providers.hpp"
#include "dbus/status.hpp"
#include "policy/snapshot.hpp"
#include "policy/vmstat.hpp"

namespace tierswap {

struct Observation {
  Status status;  // without version, state and the policy counters (the Manager's)
  policy::Snapshot snapshot;
};

// What runs while the machine is read: a tier being drained shows as
// demoting, and the policy engine holds off.
struct Activity {
  std::optional<std::string> draining_tier;
  bool reload_running = false;
  bool user_operation_running = false;
};

struct ObserverOptions {
  // The clock that swap rates and Snapshot::time_ms are computed against.
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  SignalProviders providers;
};

class StatusObserver {
 public:
  StatusObserver(Engine& engine, ObserverOptions opts = {});

  [[nodiscard]] Observation observe(const Activity& activity);

 private:
  Status read_status(const std::optional<std::string>& draining);
  void read_rates(Status& s);
  policy::Snapshot snapshot_of(const Status& s, const Activity& activity);

  Engine& engine_;
  ObserverOptions opts_;
  std::chrono::steady_clock::time_point start_;

  std::mutex rates_mu_;
  std::optional<policy::Vmstat> prev_vmstat_;
  std::chrono::steady_clock::time_point prev_time_{};
  policy::SwapRates rates_{};
};

// The snapshot of one status reading (pure): `vram` samples get the size
// of their tier from `sizes` where they leave it 0.
policy::Snapshot make_snapshot(const Status& s, std::uint64_t time_ms,
                               std::vector<policy::VramTierSample> vram,
                               const std::map<std::string, std::uint64_t>& sizes,
                               std::optional<bool> on_battery, const Activity& activity);

}  // namespace tierswap
