// zswap: its module parameters and the compressors this kernel can give it.
//
// zswap has no list of accepted compressors in sysfs, and probing by writing
// is a side effect. The kernel's crypto registry (/proc/crypto) lists the
// compression algorithms loaded now (types "compression", "scomp", "acomp");
// zswap accepts those. A module not loaded yet might still be accepted (the
// crypto API can load it), so the planner only warns about a name not listed
// and lets apply's error say what the kernel answered.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "backends/hostfs/host_fs.hpp"

namespace tierswap::zswap {

// The schema's parameter names, in the order apply writes them (compressor
// before enabled, so that zswap starts with the right compressor).
inline const std::vector<std::string>& parameter_names() {
  static const std::vector<std::string> names = {"compressor", "max_pool_percent", "accept_threshold_percent",
                                                 "shrinker_enabled", "enabled"};
  return names;
}

struct State {
  bool present = false;                       // /sys/module/zswap/parameters exists
  std::map<std::string, std::string> params;  // name -> value as sysfs prints it
  std::vector<std::string> compressors;       // from /proc/crypto, sorted, unique
};

// /proc/crypto text -> names of compression algorithms, sorted, unique.
std::vector<std::string> parse_crypto_compressors(std::string_view text);

State observe(const HostFs& fs);

// Booleans as sysfs prints them ("Y"/"N").
inline std::string bool_value(bool b) {
  return b ? "Y" : "N";
}

}  // namespace tierswap::zswap
