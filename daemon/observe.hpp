// Observed: the kernel state the planner compares a Spec against, read
// through HostFs (so a fake root gives a fake machine). Reading changes
// nothing: no hot_add, no probing writes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "backends/disk/disk.hpp"
#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "backends/zram/zram.hpp"
#include "backends/zswap/zswap.hpp"

namespace tierswap {

struct Observed {
  std::uint64_t ram_bytes = 0;       // MemTotal
  bool zram_control = false;         // /sys/class/zram-control present
  zram::Algorithms zram_algorithms;  // empty when no device exists to ask
  std::string recomp_path;           // the sysfs file that says recompression is offered
  bool has_recomp = false;
  std::map<std::string, zram::Device> zram_devices;
  std::vector<swap::SwapArea> swaps;
  std::map<std::string, std::string> sysctl;
  zswap::State zswap;
  std::vector<disk::Mount> mounts;
};

// "MemTotal:  24683904 kB" -> bytes. EINVAL when absent.
Result<std::uint64_t> parse_mem_total(std::string_view meminfo);

// Errors only when /proc/swaps or /proc/meminfo cannot be read or parsed.
Result<Observed> observe(const HostFs& fs);

}  // namespace tierswap
