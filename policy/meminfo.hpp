// /proc/meminfo text -> values in bytes ("MemTotal:  16303452 kB").
// Lines without a unit (HugePages_Total) are kept as plain counts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace tierswap::policy {

struct Meminfo {
  std::map<std::string, std::uint64_t, std::less<>> values;  // bytes (kB lines x 1024)

  [[nodiscard]] std::optional<std::uint64_t> get(std::string_view key) const {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  [[nodiscard]] std::uint64_t mem_total() const { return get("MemTotal").value_or(0); }
  [[nodiscard]] std::uint64_t mem_available() const { return get("MemAvailable").value_or(0); }
  [[nodiscard]] std::uint64_t swap_total() const { return get("SwapTotal").value_or(0); }
  [[nodiscard]] std::uint64_t swap_free() const { return get("SwapFree").value_or(0); }
};

// EINVAL naming the line when a line is not "Key: number [kB]"; MemTotal is
// required.
Result<Meminfo> parse_meminfo(std::string_view text);

}  // namespace tierswap::policy
