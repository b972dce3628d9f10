#include "daemon/tier_controls.hpp"

#include "backends/hostfs/host_fs.hpp"
#include "daemon/kind_registry.hpp"

namespace tierswap {

TierControls::TierControls(const HostFs& fs, Factory factory) : factory_(std::move(factory)) {
  if (!factory_)
    factory_ = [&fs](const OwnedTier& t) -> std::shared_ptr<TierControl> {
      const TierKind* k = kinds::for_tier(t.kind);
      return k ? k->control(t, fs) : nullptr;
    };
}

std::shared_ptr<TierControl> TierControls::get(const OwnedTier& tier) {
  std::lock_guard lk(mu_);
  auto it = by_tier_.find(tier.name);
  if (it != by_tier_.end() && it->second.pid == tier.exporter_pid &&
      it->second.socket == tier.control_socket && tier.failed.empty())
    return it->second.control;
  auto made = tier.failed.empty() ? factory_(tier) : nullptr;
  by_tier_[tier.name] = Entry{tier.exporter_pid, tier.control_socket, made};
  return made;
}

}  // namespace tierswap
