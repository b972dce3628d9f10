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
                        // "gpu-signals", "power", "suspend"
  std::string status;   // "ok", "warn", "skip"
  std::string summary;  // what was seen
  std::string fix;      // what to do (warn only)
};

// All checks, in a fixed order.
std::vector<DoctorFinding> run_doctor(const HostFs& fs);

// The DRM cards a display hangs on: a connector (/sys/class/drm/cardN-NAME)
// whose status is "connected"; the card's PCI address from its device link
// (or its uevent's PCI_SLOT_NAME), with a four-digit domain.
struct DisplayCard {
  std::string card;                     // "card0"
  std::string pci;                      // "0000:01:00.0"
  std::vector<std::string> connectors;  // "HDMI-A-1", "DP-2"
};
std::vector<DisplayCard> display_cards(const HostFs& fs);

// The NVIDIA GPUs the driver lists (/proc/driver/nvidia/gpus/<PCI>/information),
// in PCI order, which is NVML's index order.
struct NvidiaGpu {
  std::string pci;  // "0000:01:00.0"
  std::string model, uuid;
};
std::vector<NvidiaGpu> nvidia_gpus(const HostFs& fs);

}  // namespace tierswap::ctl
