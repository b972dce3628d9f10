// The zswap kind: zswap's module parameters (compressor before enabled), each
// a value write (op "write", backends/hostfs/value_step.hpp) whose original
// the journal keeps for teardown. Step::kind "zswap".
#pragma once

#include "common/tier_kind.hpp"

namespace tierswap::zswap {

const TierKind& tier_kind();

}  // namespace tierswap::zswap
