// StatusObserver: reads the machine once and builds from those reads both
// the Status the API serves and the policy::Snapshot the policy engine
// decides on (one Observation, immutable once built).
//
//   Status: tiers from the last applied config + the journal (state,
//   device, priority) + /proc/swaps (size, used) + zram mm_stat (stored,
//   ratio); PSI, meminfo, swappiness, swap rates from two /proc/vmstat
//   samples (the previous one is kept; rates are over at least 1 s).
//   vram tiers with a control channel: the exporter's latest figures and
//   their age, and evacuating/evacuated from where its blocks are. The
//   figures never hold a reading up: a reading that polls (the tick) sends
//   the exporter a request and returns; the answer is taken when it
//   arrives (take_ready(), from a watch on figures_watches()' fds, or the
//   next reading) and used until it is kFiguresMaxAgeMs old; older, the
//   figures count as unavailable (said once). memory.pressure of each
//   cgroup the config names.
//   Snapshot: PSI memory/io avg10, meminfo, each tier's swap used, the VRAM
//   samples and on_battery from the SignalProviders (tier sizes from the
//   config; p99 latency from the exporter's figures), per-cgroup memory
//   pressure, and whether a reload or a user's demote runs.
//
// Thread-safety: observe() may be called from several threads (the vmstat
// sample it keeps is under a lock); the Engine serialises the rest.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/tier_control.hpp"
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
  // A tier moving to or from its spill store (the swap area stays up).
  std::optional<std::string> moving_tier;
  bool reload_running = false;
  bool user_operation_running = false;
  // Send each vram tier's exporter a figures request (the tick). Without
  // it a reading uses what has arrived (GetStatus: never a request).
  bool poll_figures = true;
};

struct ObserverOptions {
  // The clock that swap rates and Snapshot::time_ms are computed against.
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  SignalProviders providers;
  // The control channel of an owned tier (TierControls::get); unset: none.
  std::function<std::shared_ptr<TierControl>(const OwnedTier&)> control_for;
  std::function<void(const std::string&)> warn;  // log sink: a channel that stops answering, once
};

// An exporter's figures older than this count as unavailable: three ticks
// of 2 s without an answer.
inline constexpr std::uint64_t kFiguresMaxAgeMs = 6000;

class StatusObserver {
 public:
  StatusObserver(Engine& engine, ObserverOptions opts = {});

  [[nodiscard]] Observation observe(const Activity& activity);

  // The fd to watch for each vram tier's figures answer (its connection
  // number: a watch for another one is stale), as of the last reading.
  [[nodiscard]] std::vector<std::pair<std::string, TierControl::FiguresWatch>> figures_watches();
  // The watch on `tier`'s connection `generation` saw it readable: take
  // the answer (never waits). False when that connection is over or is no
  // longer the tier's (a watch on it is to be dropped).
  bool take_ready(const std::string& tier, std::uint64_t generation);
  // Figures a synchronous reading of the same exporter saw (the operation
  // runner's, at the end of a move): used at once, and an answer to a
  // request sent before them is not taken for newer.
  void figures_seen(const std::string& tier, const TierFigures& f);

 private:
  Status read_status(const Activity& activity);
  void read_figures(TierStatus& ts, const OwnedTier& o, bool moving, bool poll);
  // Takes what `control` has (figures_mu_ held); false when it failed.
  bool take_locked(const std::string& tier, TierControl& control);
  void said_locked(const std::string& tier, const std::string& why);
  void read_cgroup_pressure(Status& s);
  void read_rates(Status& s);
  policy::Snapshot snapshot_of(const Status& s, const Activity& activity);

  Engine& engine_;
  ObserverOptions opts_;
  std::chrono::steady_clock::time_point start_;

  std::mutex rates_mu_;
  std::optional<policy::Vmstat> prev_vmstat_;
  std::chrono::steady_clock::time_point prev_time_{};
  policy::SwapRates rates_{};

  std::mutex figures_mu_;
  std::set<std::string> silent_;  // tiers whose channel failure was said (until it answers again)
  struct Latest {
    TierFigures figures;
    std::chrono::steady_clock::time_point at;
    bool seen = false;  // from figures_seen()
  };
  std::map<std::string, Latest> latest_;                               // by tier
  std::map<std::string, std::chrono::steady_clock::time_point> sent_;  // the request in flight, by tier
  std::map<std::string, std::shared_ptr<TierControl>> channels_;       // by tier, as of the last poll
};

// The snapshot of one status reading (pure): `vram` samples get the size
// of their tier from `sizes` where they leave it 0.
policy::Snapshot make_snapshot(const Status& s, std::uint64_t time_ms,
                               std::vector<policy::VramTierSample> vram,
                               const std::map<std::string, std::uint64_t>& sizes,
                               std::optional<bool> on_battery, const Activity& activity);

}  // namespace tierswap
