// What keeps a swap exporter alive under memory pressure. A swap device
// whose server stalls or dies hangs the machine or kills its processes.
//
// Memory locking, and why every page of the I/O path is resident:
// lock_all_memory() calls mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT):
// pages are locked once touched, and never before. Plain MCL_CURRENT would
// also lock (and read in) the whole text of the GPU driver, about 92 MiB of
// libcuda that this process mostly never runs. ONFAULT alone would leave the
// untouched pages of the I/O path to be faulted in while serving, when the
// fault may need memory that only swapping to this very exporter can free.
// So the I/O path is made resident before anything is served:
// - code: lock_all_memory() also mlock()s (which reads in and locks) every
//   segment of every object loaded at that moment: tierswap-nbd itself (with
//   the static CUDA runtime), libstdc++, libc, spdlog, fmt. It runs before
//   the store exists, so libcuda, which the CUDA runtime loads later, is not
//   among them; its pages are locked as the store's creation and the
//   server's warm-up I/O (Server::start) touch them.
// - buffers: Server::start() writes to every page of every payload, receive
//   and option buffer and of the request arrays (touch_pages()); the host
//   store mlock()s its whole export; CUDA pinned memory is resident anyway.
// - thread stacks: each server thread mlock()s its whole (256 KiB) stack
//   first thing (lock_thread_stack()), before it serves.
#pragma once

#include <cstddef>
#include <string>

#include "common/result.hpp"

namespace tierswap::vram {

// mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), then lock_loaded_code().
Result<void> lock_all_memory();

// mlock() the loadable segments of every object loaded now, except the GPU
// driver's (libcuda, libnvidia-*). Returns the bytes locked; a segment that
// cannot be locked is logged once and skipped.
std::size_t lock_loaded_code();

// mlock() the calling thread's whole stack (makes every page resident).
// false when it could not (logged once).
bool lock_thread_stack();

// Writes one byte in every page of [p, p + n) (a zero where it was zero: the
// contents do not change): anonymous memory gets its own pages, which
// MCL_ONFAULT then keeps locked.
void touch_pages(void* p, std::size_t n);

// oom_score_adj -1000 (through tierswap::paths).
Result<void> protect_from_oom();

// prctl(PR_SET_IO_FLUSHER) on the calling thread: its allocations do not
// recurse into the I/O it is serving. Needs CAP_SYS_RESOURCE; the first
// failure is logged once as a warning, later ones silently. Returns whether
// it took.
bool mark_io_flusher_thread();

}  // namespace tierswap::vram
