// The zram tier kind: hot-added zram devices (algorithm, recompression,
// mem_limit, disksize), a swap header, swapon. Steps (Step::kind "zram"):
//   zram_add     hot_add a device for `tier`, binding "{zram:TIER}" in later
//                steps' paths; `value` becomes the device ("zram1")
//   write        a device attribute, in the kernel's order: comp_algorithm
//                -> recomp_algorithm -> mem_limit -> disksize; undone with
//                the device
//   swap_header, swapon, swapoff   (backends/swap/swap_step.hpp)
//   zram_remove  reset (retrying EBUSY) then hot_remove device `path`
//                ("zram3"); cannot be undone, so planned last
#pragma once

#include "common/tier_kind.hpp"

namespace tierswap::zram {

const TierKind& tier_kind();

}  // namespace tierswap::zram
