// The cgroup kind: `cgroups:` memory limits (memory.high, memory.max,
// memory.swap.max, memory.zswap.max) of a slice or unit in the cgroup v2
// hierarchy, each a value write (op "write", backends/hostfs/value_step.hpp)
// whose original the journal keeps for teardown. Step::kind "cgroup".
//
// Where: a name becomes a path below /sys/fs/cgroup by common/cgroup_name.hpp.
// The directory is reached component by component without following a
// symbolic link and must be a cgroup (it has cgroup.controllers); tierswap
// never creates one: systemd owns the tree. A cgroup that does not exist
// when planning (its unit is not running) is a warning and gets nothing;
// the next reload applies it. A step whose cgroup is gone by the time it
// runs (a restore after the unit stopped) has nothing left to change and
// succeeds.
//
// Refusals, each naming the file that decided: no cgroup v2 at
// /sys/fs/cgroup (a cgroup v1 or hybrid host: cgroup.controllers is
// missing); the memory controller not enabled for the cgroup (its parent's
// cgroup.subtree_control lacks "memory"); a limit file this kernel lacks
// (memory.zswap.max before Linux 5.19, memory.swap.max without swap
// accounting).
//
// systemd writes the memory.* files of the units it manages when it starts
// them or reloads their properties; a limit set here lasts until then. For
// a permanent per-unit limit prefer the unit's own MemorySwapMax= etc.; use
// this for what systemd does not manage, or to set and restore it with the
// swap tiers.
#pragma once

#include "common/tier_kind.hpp"

namespace tierswap::cgroup {

const TierKind& tier_kind();

}  // namespace tierswap::cgroup
