// The sysctl kind: the vm.* sysctls tierswap manages, each a value write (op
// "write", backends/hostfs/value_step.hpp) whose original the journal keeps
// for teardown. Step::kind "sysctl".
#pragma once

#include "common/tier_kind.hpp"

namespace tierswap::sysctl {

const TierKind& tier_kind();

}  // namespace tierswap::sysctl
