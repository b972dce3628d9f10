// The planner: Spec x Observed (+ the journal of what tierswap owns) -> Plan.
//
// Orchestration only: it adapts config::Spec to the plug-ins' terms
// (common/tier_spec.hpp), hands each tier to the plug-in of its kind
// (daemon/kind_registry.hpp), turns their findings into Diagnostics at the
// config's SourceLocs, and orders the result. The per-kind checks and steps
// are in backends/<kind>/<kind>_kind.cpp.
//
// Pure apart from read-only probes of the files a tier names (through
// HostFs): same inputs, same plan. Deterministic order:
//   1. tiers, highest priority first (name breaks ties): new zram devices,
//      swap files, partitions, and in-place changes of owned files;
//   2. the machine-wide part of each kind, in registry order: zswap
//      parameters (compressor before enabled), then sysctls (sorted by key);
//   3. irreversible teardown of what the config no longer describes (or
//      describes differently): swapoff, then zram reset/hot_remove, file
//      removal; then values the config dropped are restored.
// A tier already set up as described (journal + kernel agree) gives no steps,
// so planning against the state a plan produced gives an empty plan.
//
// Machine-dependent validation happens in the plug-ins and comes back as
// Diagnostics at the config's SourceLocs: algorithms the kernel lacks, recompression without
// recomp_algorithm, missing directories, too little free space, existing
// non-swap files, mounted or unknown partitions.
#pragma once

#include <sys/types.h>

#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "config/spec.hpp"
#include "daemon/journal.hpp"
#include "daemon/observe.hpp"
#include "daemon/plan.hpp"

namespace tierswap {

struct PlanResult {
  Plan plan;
  std::vector<config::Diagnostic> diagnostics;  // errors and warnings
  [[nodiscard]] bool ok() const;
};

PlanResult make_plan(const config::Spec& spec, const Observed& obs, const Journal& journal, const HostFs& fs);

// Whether planning `spec` wants the GPUs read (observe_gpus()): a vram tier
// keeps pages in VRAM (not store: host), on the real machine (NVML cannot be
// pointed at a fake root).
bool needs_gpu_facts(const config::Spec& spec, const HostFs& fs);
// The journal's exporters (their VRAM is their tiers' own).
std::vector<pid_t> exporter_pids(const Journal& journal);

// Everything in the journal undone: swapoff (lowest priority first), zram
// reset + hot_remove, swap files removed, values restored to their originals.
Plan make_teardown(const Journal& journal, const Observed& obs);

}  // namespace tierswap
