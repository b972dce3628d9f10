// Profiles: the recipes of the classic swap recommendation table, as Spec
// fragments that the user's own keys override.
//
//   desktop          zram tier "zram": size min(ram / 2, 8G), algorithm
//                    [zstd, lz4, lzo-rle, lzo], priority 100;
//                    vm.swappiness 150, vm.page-cluster 0; zswap off.
//                    (The loader warns at RAM >= 32 GiB without a file or
//                    partition tier: a small disk swap is recommended.)
//   server           zswap on, compressor [zstd, lz4, lzo], max_pool_percent
//                    20, shrinker_enabled true; vm.swappiness 60; no tiers.
//                    (Warns without a file or partition tier: zswap needs a
//                    swap device behind it.)
//   db               vm.swappiness 10; zswap off; no tiers. (Warns without
//                    a file or partition tier: a small swap is recommended.)
//   k8s-node         zswap off; no tiers: swap only if the user lists some.
//   gpu-workstation  desktop, plus tier "vram": kind vram, size
//                    "25% of vram", priority 50.
//
// Overrides: a user tier with the same name as a profile tier replaces it
// whole (it must be complete: kind, size, ...); sysctl and zswap keys
// override one by one. Values from a profile carry SourceLoc{source, 0, 0}.
#pragma once

#include <string_view>

#include "config/spec.hpp"

namespace tierswap::config {

// The defaults `p` stands for (an empty Spec for Profile::none). Sizes are
// resolved against `host` like a user's ("25% of vram" stays unresolved
// while host.vram_bytes is 0).
Spec profile_recipe(Profile p, const HostFacts& host, std::string_view source);

// Lays `user` (what the file says) over `recipe`: profile tiers keep their
// place unless a user tier of the same name takes it; the user's other
// tiers follow in file order. Everything else of `user` is kept.
Spec merge_over_profile(const Spec& recipe, Spec user);

}  // namespace tierswap::config
