// Observed: the kernel state the planner compares a Spec against, read
// through HostFs (so a fake root gives a fake machine). Reading changes
// nothing: no hot_add, no probing writes. What is common to all swap tiers
// (RAM, /proc/swaps) is here; each tier-kind plug-in's own view of the
// machine is in `kinds`, keyed by plug-in name (TierKind::observe()).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "backends/zram/zram.hpp"
#include "common/result.hpp"
#include "common/tier_kind.hpp"

namespace tierswap {

struct Observed {
  std::uint64_t ram_bytes = 0;  // MemTotal
  std::vector<swap::SwapArea> swaps;
  std::map<std::string, std::shared_ptr<const KindState>> kinds;  // plug-in name -> its observation
  // The zram devices present, for reconcile() (daemon/journal.cpp) until the
  // journal asks each plug-in what of its tiers is still there.
  std::map<std::string, zram::Device> zram_devices;
};

// "MemTotal:  24683904 kB" -> bytes. EINVAL when absent.
Result<std::uint64_t> parse_mem_total(std::string_view meminfo);

// Errors only when /proc/swaps or /proc/meminfo cannot be read or parsed.
Result<Observed> observe(const HostFs& fs);

}  // namespace tierswap
