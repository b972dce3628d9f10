// Whether the NVIDIA driver keeps video memory across suspend: its module
// parameter PreserveVideoMemoryAllocations, as /proc/driver/nvidia/params
// lists it ("PreserveVideoMemoryAllocations: 1"). Without it the driver
// tears down every CUDA context on suspend and what a VRAM store held is
// gone after resume.
//
//   auto p = read_nvidia_preserve(fs);
//   if (p.preserve) ...   // VRAM survives suspend
//   log(p.evidence);      // what was read, for a person
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "backends/hostfs/host_fs.hpp"

namespace tierswap {

// The value of PreserveVideoMemoryAllocations in the params text (pure):
// true for a non-zero number, false for 0, nullopt when the line is absent
// or its value is not a number.
std::optional<bool> parse_preserve_video_memory(std::string_view params_text);

struct NvidiaPreserve {
  bool preserve = false;  // false also when it cannot be read: assume the loss
  std::string evidence;   // "PreserveVideoMemoryAllocations: 1 (/proc/driver/nvidia/params)"
};

// Reads /proc/driver/nvidia/params under fs's root.
NvidiaPreserve read_nvidia_preserve(const HostFs& fs);

}  // namespace tierswap
