// The disk tier kinds, "file" and "partition": swap files tierswap creates
// (or existing ones it adopts) and swap partitions it swaps on. Steps
// (Step::kind "disk"):
//   make_file    create swap file `path` of `size` bytes (fallocate, 0600,
//                header); undo: remove_file
//   resize_file  resize tierswap's swap file `path` from `previous_size` to
//                `size`, new header; undo: resize back
//   remove_file  delete tierswap's swap file `path`; cannot be undone, so
//                planned last
//   swapon, swapoff   (backends/swap/swap_step.hpp)
#pragma once

#include "common/tier_kind.hpp"

namespace tierswap::disk {

const TierKind& tier_kind();

}  // namespace tierswap::disk
