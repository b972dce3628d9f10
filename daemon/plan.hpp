// Plan and Step: what applying a config would do, as plain data.
//
// A Plan is an ordered list of Steps. Each Step is one kernel-visible action
// and knows its undo (undo_of() in daemon/plan_ops.hpp). Steps are data, not
// closures, so that a plan can be printed, compared in golden tests, written
// as JSON, and journalled.
//
// Device names that exist only at apply time (a zram device from hot_add)
// are written symbolically in Step::path as "{zram:TIER}"; the zram_add step
// of TIER binds the name when it runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tierswap {

enum class StepOp {
  write,        // write `value` to kernel path `path` (sysfs, sysctl); `previous` is the value before
  zram_add,     // hot_add a zram device for `tier`, binding {zram:TIER}
  zram_remove,  // reset (retrying EBUSY) then hot_remove device `path` ("zram3"); no undo
  swap_header,  // write a swap header for `size` bytes to `path` (a new zram device)
  make_file,    // create swap file `path` of `size` bytes (fallocate, 0600, header)
  resize_file,  // resize our swap file `path` from `previous_size` to `size`, new header
  remove_file,  // delete our swap file `path`; no undo
  swapon,       // swapon `path` at `priority` (+discard); `value` is the tier kind
  swapoff,      // swapoff `path` (helper process); undo: swapon at `priority`/`discard`
};

struct Step {
  StepOp op = StepOp::write;
  std::string tier;  // tier name; empty for sysctl/zswap values
  std::string path;
  std::string value;
  std::optional<std::string> previous;  // write: undo writes it back; nullopt: nothing to undo
  int priority = -1;
  bool discard = false;
  std::uint64_t size = 0;
  std::uint64_t previous_size = 0;
  // Added to the kernel's answer when the step fails ("this kernel offers: lzo").
  std::string hint;
};

struct Plan {
  std::string source;              // config the plan came from
  std::vector<Step> steps;         // in apply order
  std::vector<std::string> notes;  // what a person should know (round-robin, algorithm chosen)
  [[nodiscard]] bool empty() const { return steps.empty(); }
};

// A tier that tierswap set up and owns, as the journal records it.
struct OwnedTier {
  std::string name;
  std::string kind;             // "zram", "file", "partition"
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
};

}  // namespace tierswap
