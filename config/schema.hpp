// The schema, version 1: YAML text -> the Spec the user wrote, before any
// profile is expanded. Internal to config/ (the loader calls it); it is a
// header only so that the loader's steps stay in separate files. yaml-cpp
// stays inside schema.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/spec.hpp"

namespace tierswap::config {

// Reads `yaml` and returns what it sets: Spec::profile and profile_loc,
// only the sysctl and zswap keys written, the tiers as written (defaults for
// priority and discard filled in, sizes resolved against `host`). Appends
// one diagnostic per problem to `out`, with 1-based line:col; keeps going
// after each one so that every problem is reported. Malformed YAML gives a
// single diagnostic at the parser's position.
Spec read_user_config(std::string_view yaml, std::string_view source, const HostFacts& host,
                      std::vector<Diagnostic>& out);

// Valid tier names become a D-Bus object path component: [a-zA-Z0-9_-]{1,32}
// (the rule is common/tier_name.hpp's check_tier_name).
bool valid_tier_name(std::string_view name);

// sysctl keys tierswap manages, with the range it accepts for each:
//   vm.swappiness            0..200   (the kernel's own range)
//   vm.page-cluster          0..10    (2^N pages per swap read-ahead; more is
//                                      never useful and the kernel caps it)
//   vm.watermark_scale_factor 1..3000 (the kernel's range since 5.x)
//   vm.vfs_cache_pressure    1..1000  (kernel takes any N >= 0, but 0 never
//                                      reclaims dentries/inodes, an OOM risk,
//                                      and the kernel docs stop at a few hundred)
//   vm.min_free_kbytes       1..2^31-1 (kernel int; must be > 0), and at
//                                      most kMinFreeRamPercent of RAM when
//                                      RAM is known (schema.cpp says why)
inline constexpr unsigned kMinFreeRamPercent = 5;

// A zram tier's size may be at most this many times RAM (when RAM is known).
inline constexpr std::uint64_t kMaxZramRamRatio = 2;

struct SysctlRule {
  const char* key;
  long long min;
  long long max;
};
const std::vector<SysctlRule>& sysctl_rules();

// Every key the schema accepts, as a path: "zswap.enabled",
// "sysctl.vm.swappiness", "tiers[].recompress.when", parents included
// ("zswap", "tiers[].recompress"). Read from the tables the reader checks
// against, so that tierswap.yaml(5) can be tested for completeness.
std::vector<std::string> schema_key_paths();

}  // namespace tierswap::config
