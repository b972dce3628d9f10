// Whole-spec checks after the profile is expanded: combinations that work
// but work badly. They give warnings, never errors; machine-dependent checks
// (algorithms, paths, free space, mounts) belong to the planner.
#pragma once

#include <vector>

#include "config/spec.hpp"

namespace tierswap::config {

// Appends warnings for:
//  - zswap enabled together with a zram tier (pages get compressed twice);
//  - zswap enabled without a file, partition or vram tier (it needs a swap
//    device behind it) [for profile server this reads as the profile's
//    warning, at the profile: key];
//  - profile db without a file or partition tier (a small swap is advised);
//  - profile desktop on >= 32 GiB of RAM without a file or partition tier.
void check_combinations(const Spec& spec, const HostFacts& host, std::vector<Diagnostic>& out);

}  // namespace tierswap::config
