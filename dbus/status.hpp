// The status data model of the D-Bus API: what `GetStatus()` on D-Bus and
// `tierswapctl status --json` serialise, and what the D-Bus properties read.
// Filled by the daemon (observe: /proc/swaps, zram mm_stat, PSI, vmstat);
// serialised by dbus/ (status_json.hpp). No logic here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tierswap {

// State of one tier, as on D-Bus (org.tierswap.Tier1.State). `evacuating`
// and `evacuated` are a VRAM tier's moves to its spill store: the swap area
// stays up all along; evacuated means every block is in the spill store and
// the VRAM is given back (promote moves them back: active again).
enum class TierState { active, demoting, evacuating, drained, unavailable, failed, evacuated };
const char* to_string(TierState s);

// A vram tier's exporter as it counts itself (tierswap-nbd's control
// channel, `stats`: backends/vram/control_server.hpp), since it started.
struct ExporterOpCount {
  std::string op;  // "read", "write", "zero", "trim", "flush"
  std::uint64_t requests = 0, bytes = 0;
};
// One bucket of the exporter's request latency histogram: requests whose
// latency was at most upper_ns and above the previous bucket's bound (not
// cumulative; ascending; empty buckets may be left out).
struct LatencyBucket {
  std::uint64_t upper_ns = 0;
  std::uint64_t count = 0;
};
struct ExporterCounters {
  std::vector<ExporterOpCount> ops;
  std::vector<LatencyBucket> latency;
};

struct TierStatus {
  std::string name;
  std::string kind;    // "zram", "file", "partition", "vram"
  std::string device;  // "/dev/zram1", "/var/swap/tier.swap"; empty when not set up
  int priority = 0;
  TierState state = TierState::unavailable;
  std::uint64_t size_bytes = 0;      // swap area size
  std::uint64_t used_bytes = 0;      // pages in it (/proc/swaps Used)
  std::uint64_t stored_bytes = 0;    // RAM it costs: zram mm_stat mem_used_total; else = used
  double compression_ratio = 1.0;    // orig_data_size / compr_data_size (zram), else 1
  std::uint32_t latency_p99_us = 0;  // 0 when not measured
  // vram tiers only (0 or empty otherwise; `device` is the nbd device): the
  // tierswap-nbd exporter serving it, whether it still runs ("running",
  // "gone"), its store ("cuda", "host"), its connections to the kernel, and
  // why the tier failed (its exporter died: the pages on it are lost).
  int exporter_pid = 0;
  std::string exporter_state;
  std::string store;
  std::uint32_t connections = 0;
  std::string failure;
  // The exporter's counters; nullopt until read from it. metrics/ emits the
  // tierswap_exporter_* families from them; status_json does not carry them
  // (yet), so they are not part of GetStatus().
  std::optional<ExporterCounters> exporter;
  // vram tiers whose exporter answered on its control channel this reading
  // (exporter_live false: not read, the figures below are 0): its request
  // count, bytes read and written, queue depth, latency percentiles (p99
  // also in latency_p99_us above), where its blocks are (resident_bytes in
  // VRAM, spilled_bytes in the spill store), and the spill store's kind
  // ("lz4", "file"; empty: none), compression ratio and the bytes it holds.
  bool exporter_live = false;
  std::uint64_t exporter_figures_age_ms = 0;  // how old those figures are (answers are not waited for)
  std::uint64_t exporter_requests = 0;
  std::uint64_t exporter_read_bytes = 0, exporter_write_bytes = 0;
  std::uint64_t exporter_queue_depth = 0;
  double exporter_latency_p50_us = 0, exporter_latency_p99_us = 0;
  std::uint64_t resident_bytes = 0, spilled_bytes = 0;
  std::string spill;
  double spill_ratio = 0;
  std::uint64_t spill_stored_bytes = 0;
  // vram tiers: the card, as the config's `gpu:` key names it (an index or
  // a UUID; empty: the first GPU).
  std::string gpu;
};

// One PSI resource line pair (/proc/pressure/memory, io): percent stalled.
struct PressureLine {
  double avg10 = 0, avg60 = 0, avg300 = 0;
  std::uint64_t total_us = 0;
};
struct Pressure {
  PressureLine some, full;
};

struct GpuStatus {
  std::string name;
  std::uint64_t total_bytes = 0, free_bytes = 0, used_by_tier_bytes = 0;
};

// How often the policy engine decided an action, per action ("evacuate",
// "promote") and the rule that decided it ("reserve", "foreign", "latency",
// "on_battery", "cooldown"), since the daemon started. Counted when
// decided, whether the operation then ran or was refused (the log and the
// PolicyAction signal say which).
struct PolicyCounter {
  std::string action;
  std::string rule;
  std::uint64_t count = 0;
};

// memory.pressure of a cgroup the config names (`cgroups:`), as PSI avg10
// percent; `cgroup` is the name as written ("postgresql.service").
struct CgroupPressure {
  std::string cgroup;
  Pressure memory;
};

// What the daemon holds against suspend (logind inhibitor locks) for the
// tiers whose pages would not survive it (a VRAM tier whose driver does not
// keep video memory across suspend). Both empty: none held.
struct SuspendStatus {
  // "delay": it drains those tiers when the machine is about to sleep, and
  // logind waits for that; "block": a tier holds pages that cannot be
  // drained (no room elsewhere), so suspend is refused while it does.
  std::string inhibitor;
  std::string detail;  // which tiers and why, with the numbers
};

struct Status {
  std::string version;
  std::string state;          // "starting", "running", "reloading", "stopping", "failed"
  std::string config_source;  // "/etc/tierswap.yaml" or "<embedded default>"
  int swappiness = -1;
  Pressure memory_pressure, io_pressure;
  double swap_in_pages_per_s = 0, swap_out_pages_per_s = 0;  // from /proc/vmstat pswpin/pswpout
  std::uint64_t mem_total_bytes = 0, mem_available_bytes = 0;
  std::vector<TierStatus> tiers;                // in priority order, highest first
  std::vector<GpuStatus> gpus;                  // empty until the VRAM tier lands
  std::vector<PolicyCounter> policy_actions;    // by (action, rule); empty until the policy acts
  std::vector<CgroupPressure> cgroup_pressure;  // the config's cgroups that have memory.pressure
  SuspendStatus suspend;                        // empty unless a tier would lose pages across suspend
};

}  // namespace tierswap
