#include "policy/sleep_drain.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/byte_format.hpp"

namespace tierswap::policy {
namespace {

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
  return buf;
}

}  // namespace

SleepDrainEstimate estimate_sleep_drain(const std::vector<DrainTier>& tiers) {
  SleepDrainEstimate e;
  for (const auto& t : tiers) {
    if (t.used_bytes == 0) continue;
    const bool observed = t.observed_bytes_per_second > 0;
    const std::uint64_t rate = observed  ? t.observed_bytes_per_second
                               : t.spill ? kSpillDrainBytesPerSecond
                                         : kSwapoffDrainBytesPerSecond;
    e.seconds += static_cast<double>(t.used_bytes) / static_cast<double>(rate);
    e.detail += (e.detail.empty() ? "" : "; ") +
                ("tier " + t.name + ": " + format_bytes(t.used_bytes) + " by " +
                 (t.spill ? "evacuation to its spill" : "swapoff") + " at " + format_bytes(rate) + "/s" +
                 (observed ? " (its last drain)" : " (assumed)"));
  }
  const auto twice = static_cast<std::uint64_t>(std::ceil(e.seconds * 2));
  e.recommend_seconds = std::max<std::uint64_t>(10, (twice + 4) / 5 * 5);
  return e;
}

std::optional<std::string> sleep_drain_warning(const std::vector<DrainTier>& tiers,
                                               std::chrono::microseconds delay_max) {
  const SleepDrainEstimate e = estimate_sleep_drain(tiers);
  const double wait = static_cast<double>(delay_max.count()) / 1e6;
  if (e.seconds <= wait) return std::nullopt;
  bool any_without_spill = false;
  for (const auto& t : tiers) any_without_spill = any_without_spill || (t.used_bytes > 0 && !t.spill);
  std::string w = "draining before sleep takes about " + seconds_text(e.seconds) + " (" + e.detail +
                  "), but logind waits at most " + seconds_text(wait) +
                  " (InhibitDelayMaxUSec): it would suspend mid-drain and lose the pages still in VRAM; set "
                  "InhibitDelayMaxSec=" +
                  std::to_string(e.recommend_seconds) + " in " + kLogindDropIn +
                  " ([Login] section; then systemctl kill -s HUP systemd-logind)";
  if (any_without_spill)
    w += ", or give the tier a spill: (an evacuation moves whole chunks, faster than swapoff)";
  return w;
}

}  // namespace tierswap::policy
