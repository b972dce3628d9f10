// /proc/swaps: text in, values out.
//
//   Filename        Type       Size     Used  Priority
//   /dev/zram0      partition  8388604  0     100
//
// Sizes are in KiB as the kernel prints them. Path names with spaces or
// tabs appear octal-escaped ("\040"); they are unescaped here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace tierswap::swap {

struct SwapArea {
  std::string path;  // "/dev/zram1", "/var/swap/tier.swap"
  std::string type;  // "partition" or "file"
  std::uint64_t size_kib = 0;
  std::uint64_t used_kib = 0;
  int priority = 0;
};

// Errors (EINVAL) name the line number and the text that did not parse.
Result<std::vector<SwapArea>> parse_proc_swaps(std::string_view text);

// The area whose path is `path`, if active.
std::optional<SwapArea> find_area(const std::vector<SwapArea>& areas, std::string_view path);

}  // namespace tierswap::swap
