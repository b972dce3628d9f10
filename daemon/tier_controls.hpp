// TierControls: the daemon's run-time channels to what serves its tiers
// (common/tier_control.hpp), one per tier, made by the tier's plug-in
// (TierKind::control) on first use and kept while the tier keeps the same
// server (a new exporter pid or socket makes a new channel). Shared by the
// operation runner (evacuate, promote, progress, cancel) and the status
// observer (figures on each tick).
//
// Thread-safety: get() may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/owned.hpp"
#include "common/tier_control.hpp"

namespace tierswap {

class HostFs;

class TierControls {
 public:
  using Factory = std::function<std::shared_ptr<TierControl>(const OwnedTier&)>;
  // factory unset: the tier's plug-in through the kind registry, on `fs`.
  explicit TierControls(const HostFs& fs, Factory factory = {});

  // The channel for `tier` (a journal record), or null when its kind has
  // none (or the tier failed).
  std::shared_ptr<TierControl> get(const OwnedTier& tier);

 private:
  struct Entry {
    int pid = 0;
    std::string socket;
    std::shared_ptr<TierControl> control;
  };
  Factory factory_;
  std::mutex mu_;
  std::map<std::string, Entry> by_tier_;
};

}  // namespace tierswap
