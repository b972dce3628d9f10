// The vm.* sysctls tierswap manages, read through HostFs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"

namespace tierswap::sysctl {

// The keys the config schema allows, in the order apply writes them.
inline const std::vector<std::string>& managed_keys() {
  static const std::vector<std::string> keys = {"vm.min_free_kbytes", "vm.page-cluster", "vm.swappiness",
                                                "vm.vfs_cache_pressure", "vm.watermark_scale_factor"};
  return keys;
}

// key -> value as the kernel prints it, for the managed keys that exist.
std::map<std::string, std::string> observe(const HostFs& fs);

}  // namespace tierswap::sysctl
