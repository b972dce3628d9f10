// Snapshot: what the policy engine sees at one instant, as plain values.
// The daemon fills one from PSI, /proc/meminfo, /proc/swaps, NVML and the
// exporter's latency counters; a trace (policy/trace.hpp) holds a sequence
// of them. decide() reads only a Snapshot: no files, clocks or threads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tierswap::policy {

// PSI "some"/"full" avg10 of one resource, in percent (0..100).
struct Pressure {
  double some_avg10 = 0;
  double full_avg10 = 0;
};

// One VRAM tier's GPU, as NVML and the exporter report it.
struct VramTierSample {
  std::string tier;                      // the tier's name in the config ("vram")
  std::uint64_t vram_free_bytes = 0;     // free memory on the tier's GPU
  std::uint64_t vram_total_bytes = 0;    // the GPU's memory
  std::uint64_t foreign_vram_bytes = 0;  // VRAM other processes use on that GPU
  std::uint64_t p99_latency_us = 0;      // the tier's I/O p99 latency, microseconds
  std::uint64_t tier_size_bytes = 0;     // VRAM the tier takes when active (what a promote claims)
};

struct Snapshot {
  std::uint64_t time_ms = 0;  // since the trace (or the daemon) started
  Pressure memory;
  Pressure io;
  std::uint64_t mem_available_bytes = 0;
  std::uint64_t mem_total_bytes = 0;
  std::map<std::string, std::uint64_t> swap_used_bytes;  // per tier name
  std::vector<VramTierSample> vram;                      // one per VRAM tier
  // memory.pressure of each cgroup the config names under `cgroups:` (by
  // the name as written, "postgresql.service"), where the kernel has it:
  // a rule may weigh the stall of the workloads a person cares about, not
  // only the machine's.
  std::map<std::string, Pressure> cgroup_memory;
  // Pages swapped in per second, the whole machine (/proc/vmstat pswpin
  // over the last second or more): the kernel does not say from which area.
  double swap_in_pages_per_s = 0;
  bool on_battery = false;
  bool reload_running = false;       // a config reload is being applied
  bool user_demote_running = false;  // a demote/promote a user asked for runs
};

}  // namespace tierswap::policy
