// What keeps a swap exporter alive under memory pressure. A swap device
// whose server stalls or dies hangs the machine or kills its processes.
#pragma once

#include <string>

#include "common/result.hpp"

namespace tierswap::vram {

// mlockall(MCL_CURRENT | MCL_FUTURE): never swap the exporter itself.
Result<void> lock_all_memory();

// oom_score_adj -1000 (through tierswap::paths).
Result<void> protect_from_oom();

// prctl(PR_SET_IO_FLUSHER) on the calling thread: its allocations do not
// recurse into the I/O it is serving. Needs CAP_SYS_RESOURCE; the first
// failure is logged once as a warning, later ones silently. Returns whether
// it took.
bool mark_io_flusher_thread();

}  // namespace tierswap::vram
