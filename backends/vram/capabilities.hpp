// The exporter's capabilities: it keeps only what serving swap needs.
//
//   CAP_IPC_LOCK      mlockall(2)/mlock(2) of the I/O path, the store and its
//                     staging buffers beyond RLIMIT_MEMLOCK;
//   CAP_SYS_RESOURCE  oom_score_adj -1000 and PR_SET_IO_FLUSHER on each I/O
//                     thread (both EPERM without it).
//
// Everything else it inherited from its starter (tierswapd runs with
// CAP_SYS_ADMIN for swapon and the nbd attach) is dropped from the
// effective, permitted, inheritable, ambient and bounding sets before the
// exporter opens its store or serves a byte: a compromised exporter cannot
// swapon, attach devices, load modules or regain a capability by exec.
#pragma once

#include <string>

#include "common/result.hpp"

namespace tierswap::vram {

struct CapabilityReport {
  bool ipc_lock = false;          // kept (it was there to keep)
  bool sys_resource = false;      // kept
  bool bounding_dropped = false;  // the bounding set holds only the kept ones
  // One line per missing capability: what is missing and what that risks;
  // empty when both are there.
  std::string warnings;
};

// Drops every capability but CAP_IPC_LOCK and CAP_SYS_RESOURCE (those of the
// two this process has). Errors: capget/capset failing (errno).
Result<CapabilityReport> keep_only_needed_capabilities();

}  // namespace tierswap::vram
