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
// Overrides: a `tiers:` list in the file replaces the profile's tiers as a
// whole (tiers are never merged by name: `profile: desktop` plus a user's
// zram tier "fast" is one zram device, not two); sysctl and zswap keys
// override one by one. Values from a profile carry SourceLoc{source, 0, 0}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/spec.hpp"

namespace tierswap::config {

// The defaults `p` stands for (an empty Spec for Profile::none). Sizes are
// resolved against `host` like a user's ("25% of vram" stays unresolved
// while host.vram_bytes is 0).
Spec profile_recipe(Profile p, const HostFacts& host, std::string_view source);

// Lays `user` (what the file says) over `recipe`: the recipe's tiers only
// when the file has no `tiers:` key (user.tiers_loc unset); its sysctl and
// zswap keys where the file does not set them. Everything else of `user`
// is kept.
Spec merge_over_profile(const Spec& recipe, Spec user);

// One setting of a loaded Spec that its profile supplied (the file does
// not set it): what `tierswapctl plan` lists under "from profile".
struct ProfileSetting {
  std::string key;    // "sysctl.vm.swappiness", "zswap.enabled", "tiers"
  std::string value;  // "150", "false", "zram (zram, min(ram / 2, 8G), priority 100)"
};

// The settings of `spec` that come from spec.profile, in the order sysctl,
// zswap, tiers; empty for Profile::none. Tiers from the profile are listed
// one entry each under key "tiers[N]".
std::vector<ProfileSetting> profile_settings(const Spec& spec);

}  // namespace tierswap::config
