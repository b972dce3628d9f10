// tierswapctl doctor: the known traps of swap setups, looked for on the
// machine itself (through HostFs, so --root DIR points it at a fake tree),
// not asked of the daemon. Each check says ok / warn / skip, what it saw,
// and for warn what to do.
#pragma once

#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"

namespace tierswap::ctl {

struct DoctorFinding {
  std::string id;       // "zswap-zram", "swappiness", "oom-killer", "kubelet-swap",
                        // "container-limit", "mem-available", "vram-display",
                        // "gpu-signals", "power"
  std::string status;   // "ok", "warn", "skip"
  std::string summary;  // what was seen
  std::string fix;      // what to do (warn only)
};

// All checks, in a fixed order.
std::vector<DoctorFinding> run_doctor(const HostFs& fs);

}  // namespace tierswap::ctl
