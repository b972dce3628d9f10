// The signals the policy engine decides on beyond what the kernel's files
// say (those the status observer reads itself): each is a small function,
// so that a reader of the GPU (NVML) or of the power supply (UPower) plugs
// in with one line:
//
//   providers.vram = gpu::vram_sampler(...);
//   providers.on_battery = power::on_battery_reader(...);
//
// Each is called once per snapshot on the daemon's loop: it must not block
// (read what a background reader last saw).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "policy/snapshot.hpp"

namespace tierswap {

struct SignalProviders {
  // One sample per VRAM tier on a GPU it can see. A sample's
  // tier_size_bytes may be left 0: the snapshot fills in the size the
  // config gives the tier. Default: no GPU reader, no samples.
  std::function<std::vector<policy::VramTierSample>()> vram = [] {
    return std::vector<policy::VramTierSample>{};
  };
  // true on battery, false on AC, nullopt when unknown (no UPower, no
  // power supply): the snapshot then says on AC. Default: unknown.
  std::function<std::optional<bool>()> on_battery = [] { return std::optional<bool>{}; };
};

}  // namespace tierswap
