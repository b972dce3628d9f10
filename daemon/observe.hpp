// Observed: the kernel state the planner compares a Spec against, read
// through HostFs (so a fake root gives a fake machine). Reading changes
// nothing: no hot_add, no probing writes. What is common to all swap tiers
// (RAM, /proc/swaps) is here; each tier-kind plug-in's own view of the
// machine is in `kinds`, keyed by plug-in name (TierKind::observe()).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backends/gpu/nvml.hpp"
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
  // The GPUs as NVML reads them (observe_gpus()), for a vram tier's
  // free-VRAM check and its "50% of vram" size; nullopt when not read (no
  // tier keeps pages in VRAM, or a fake root: NVML reports this machine's
  // GPUs) or not readable, with the reason in gpus_unknown.
  std::optional<std::vector<gpu::GpuReading>> gpus;
  std::string gpus_unknown;
};

// "MemTotal:  24683904 kB" -> bytes. EINVAL when absent.
Result<std::uint64_t> parse_mem_total(std::string_view meminfo);

// Errors only when /proc/swaps or /proc/meminfo cannot be read or parsed.
Result<Observed> observe(const HostFs& fs);

// Reads every GPU through NVML (`library`, loaded for this call and
// unloaded after) into o.gpus; `exclude`: the pids of tierswap's exporters
// (their use is then the tiers' own). Where NVML is absent or fails,
// o.gpus stays nullopt and o.gpus_unknown says why. Costs nvmlInit (10 ms
// on an H200 in persistence mode; seconds without it): call it only when a
// plan needs it.
void observe_gpus(Observed& o, std::span<const pid_t> exclude,
                  const std::string& library = gpu::kNvmlLibrary);

}  // namespace tierswap
