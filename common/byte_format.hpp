// Byte counts for people: the one formatter that the daemon's messages and
// tierswapctl's tables share. Binary units (1024), rounded to nearest.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace tierswap {

namespace detail {
// `units` from bytes up; one decimal below `decimals_below`, none from there.
inline std::string format_bytes(std::uint64_t b, const char* const (&units)[7], const char* sep,
                                double decimals_below) {
  if (b < 1024) return std::to_string(b) + sep + units[0];
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, v < decimals_below ? "%.1f%s%s" : "%.0f%s%s", v, sep, units[u]);
  return buf;
}
}  // namespace detail

// For sentences: 512 -> "512 B", 1288490188 -> "1.2 GiB", 209715200 -> "200 MiB"
// (one decimal below 10).
inline std::string format_bytes(std::uint64_t b) {
  static const char* const units[7] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  return detail::format_bytes(b, units, " ", 10);
}

// For tables and progress lines that must fit 80 columns: 0 -> "0B",
// 1536 -> "1.5K", 17179869184 -> "16.0G" (one decimal below 100).
inline std::string format_bytes_short(std::uint64_t b) {
  static const char* const units[7] = {"B", "K", "M", "G", "T", "P", "E"};
  return detail::format_bytes(b, units, "", 100);
}

// Whole MiB, rounded down, for the policy engine's reasons and traces:
// 1073741824 -> "1024 MiB", 1572864 -> "1 MiB". Decisions compare against
// thresholds given in MiB, so the reason says the number the way the
// threshold is written (and the goldens keep it stable).
inline std::string format_mib(std::uint64_t b) {
  return std::to_string(b >> 20) + " MiB";
}

}  // namespace tierswap
