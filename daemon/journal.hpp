// The journal: what tierswapd changed, so that it can undo it on exit, after
// a crash, or when the config drops something. Kept at
// /run/tierswap/state.json under --root (tmpfs: a reboot forgets it, as it
// forgets the zram devices and swapons it describes).
//
// Format (version 1), keys in this order:
//   {"version": 1,
//    "source": "/etc/tierswap.yaml",
//    "tiers": [{"name": "fast", "kind": "zram", "device": "zram1",
//               "swap_path": "/dev/zram1", "created_device": true,
//               "created_file": false, "active": true, "drained": false,
//               "priority": 100,
//               "discard": false, "algorithm": "lz4", "size": 8589934592,
//               "mem_limit": 0}],
//    "values": [{"path": <kernel path of vm.swappiness>, "original": "60",
//                "current": "150"}]}
// `drained`: swapped off on request (Demote); the tier stays set up but
// inactive until Promote, and neither reload nor teardown swaps it off or on
// again. A journal without the key (older tierswapd) reads as false.
// `original` is the value before tierswap first changed it; it is what
// teardown restores, however many reloads happened since.
//
// Written atomically (temp file, fsync, rename, fsync of the directory) after
// every step, so a crash mid-apply leaves a journal that names every change.
#pragma once

#include <string>
#include <vector>

#include "daemon/plan.hpp"
#include "common/result.hpp"
#include "backends/hostfs/host_fs.hpp"

namespace tierswap {

struct Observed;

// OwnedTier and ValueRecord: common/owned.hpp (through daemon/plan.hpp).
struct Journal {
  int version = 1;
  std::string source;
  std::vector<OwnedTier> tiers;
  std::vector<ValueRecord> values;

  [[nodiscard]] bool empty() const { return tiers.empty() && values.empty(); }
  OwnedTier* find_tier(const std::string& name);
  [[nodiscard]] const OwnedTier* find_tier(const std::string& name) const;
  OwnedTier* find_swap(const std::string& swap_path);
  OwnedTier* find_device(const std::string& device);
  ValueRecord* find_value(const std::string& path);
};

std::string to_json(const Journal& j);
// EINVAL with the reason when the text is not a version-1 journal.
Result<Journal> parse_journal(const std::string& json);

// A missing journal is an empty one.
Result<Journal> load_journal(const HostFs& fs);
// Atomic replace; an empty journal removes the file (and /run/tierswap when
// nothing else is in it).
Result<void> save_journal(const HostFs& fs, const Journal& j);

// Brings a journal loaded at start-up in line with the machine: zram devices
// that are gone are forgotten, swap areas no longer in /proc/swaps are marked
// inactive, files that are gone are forgotten. Returns one line per change.
std::vector<std::string> reconcile(Journal& j, const Observed& o, const HostFs& fs);

}  // namespace tierswap
