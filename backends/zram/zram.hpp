// zram devices: what the kernel offers and what a device is set to.
// Reads through HostFs; the writes that set a device up are plan Steps
// (daemon/planner.cpp), in the kernel's required order:
//   comp_algorithm -> algorithm_params -> recomp_algorithm -> mem_limit -> disksize.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "common/result.hpp"

namespace tierswap::zram {

// "[lzo-rle] lzo lz4" -> selected "lzo-rle", all {"lzo-rle","lzo","lz4"}.
// A value without brackets and with one name is that name, selected.
struct Algorithms {
  std::string selected;
  std::vector<std::string> all;
};
Algorithms parse_comp_algorithm(std::string_view text);

struct Device {
  std::string name;  // "zram1"
  std::string algorithm;
  std::uint64_t disksize = 0;
  // No mem_limit: the kernel makes it write-only (the journal records it).
  // Recompression is per kernel, not per device: see recomp_attr_path().
};

// Reads /sys/block/<name>/{comp_algorithm,disksize}.
Result<Device> read_device(const HostFs& fs, const std::string& name);

// Names of the zram devices present ("zram0", ...), sorted by number.
std::vector<std::string> list_devices(const HostFs& fs);

// The algorithms this kernel offers, from the comp_algorithm of any existing
// device (they are the same for all). Empty when no device exists: learning
// them then needs a hot_add, which planning must not do.
Algorithms kernel_algorithms(const HostFs& fs);

// Whether the kernel offers recompression: the `recomp_algorithm` attribute
// of an existing device. Returns the sysfs file it looked for.
std::string recomp_attr_path(const HostFs& fs);

// Resets a device, retrying EBUSY (the swapoff that just ended may still
// hold it) with doubling backoff up to `budget`.
Result<void> reset(const HostFs& fs, const std::string& dev,
                   std::chrono::milliseconds budget = std::chrono::milliseconds(3000));

}  // namespace tierswap::zram
