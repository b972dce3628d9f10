// What tierswap owns, as the journal records it: the tiers it set up and the
// kernel values it changed. Plug-ins update these records when their steps
// complete (TierKind::record); daemon/journal.hpp stores and loads them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace tierswap {

// A tier that tierswap set up and owns.
struct OwnedTier {
  std::string name;
  std::string kind;             // the tier's kind as configured: "zram", "file", "partition"
  std::string device;           // zram: "zram1"; else empty
  std::string swap_path;        // "/dev/zram1", "/var/swap/t.swap", "/dev/vdb2"
  bool created_device = false;  // zram device hot-added by tierswap
  bool created_file = false;    // swap file created by tierswap
  bool active = false;          // swapon done by tierswap
  // Swapped off on request (Demote over D-Bus): set up and kept, but
  // inactive until Promote. Reload leaves it so; teardown does not swapoff it.
  bool drained = false;
  int priority = -1;
  bool discard = false;
  std::string algorithm;
  std::uint64_t size = 0;
  std::uint64_t mem_limit = 0;
  // vram: the tierswap-nbd process serving the device (0: none), its start
  // time (/proc/<pid>/stat field 22, clock ticks after boot; 0: unknown) so
  // that a reused pid is never signalled, and its store ("cuda", "host").
  int exporter_pid = 0;
  std::uint64_t exporter_start = 0;
  std::string store;
  // vram: the backend identifier handed to the kernel at attach
  // ("tierswap-<tier>", /sys/block/nbdN/backend on kernels that keep it);
  // empty when the attach went through the ioctl interface.
  std::string backend;
  int connections = 0;  // vram: sockets handed to the kernel
  // vram: the spill store the exporter was started with ("lz4",
  // "file:/PATH"; empty: none, so no evacuation), and its control socket
  // (a kernel-style path under the daemon's root,
  // /run/tierswap/exporter-<tier>/control), which a restarted daemon
  // reconnects to.
  std::string spill;
  std::string control_socket;
  // vram: its blocks were moved to the spill store by an evacuation (the
  // swap area stays up; the VRAM is given back) and not promoted since.
  bool evacuated = false;
  // Why the tier failed (its exporter died, its device vanished); empty
  // while it is sound. A failed tier is torn down and set up afresh.
  std::string failed;
};

// Where an owned tier's blocks are, as its record says (while a move runs,
// or for a tier whose exporter answers, the exporter's figures know better:
// TierFigures::evacuated()). The one reading of `drained`, `evacuated` and
// `active` together, for the suspend guard, the status observer and the
// operation runner:
//   drained  swapped off on request: the pages went home through swapoff
//   spill    evacuated: in its spill store, the swap area up, the fast
//            memory given back
//   device   in the tier's own memory (set up, neither of the above)
//   none     not set up by tierswap
enum class BlocksAt { none, device, spill, drained };

inline BlocksAt blocks_at(const OwnedTier& t) {
  if (t.drained) return BlocksAt::drained;
  if (t.evacuated) return BlocksAt::spill;
  return t.active ? BlocksAt::device : BlocksAt::none;
}

// A kernel value tierswap changed. `original` is the value before tierswap
// first changed it; it is what teardown restores, however many reloads
// happened since.
struct ValueRecord {
  std::string path;
  std::string original;
  std::string current;
};

// The journal's two lists, as a plug-in's record() sees them.
struct Ownership {
  std::vector<OwnedTier>& tiers;
  std::vector<ValueRecord>& values;

  OwnedTier* find_swap(const std::string& swap_path) {
    for (auto& t : tiers)
      if (t.swap_path == swap_path) return &t;
    return nullptr;
  }
  OwnedTier* find_device(const std::string& device) {
    for (auto& t : tiers)
      if (!t.device.empty() && t.device == device) return &t;
    return nullptr;
  }
  ValueRecord* find_value(const std::string& path) {
    for (auto& v : values)
      if (v.path == path) return &v;
    return nullptr;
  }
};

}  // namespace tierswap
