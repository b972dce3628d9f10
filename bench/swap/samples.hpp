// Once-a-second samples -> rates and stall (pure). The text parsing reuses
// policy/vmstat and policy/psi; the arithmetic on pairs of samples is here.
#pragma once

#include <string_view>
#include <vector>

#include "bench/swap/report.hpp"
#include "common/result.hpp"

namespace tierswap::bench {

// One sample from the texts of /proc/vmstat, /proc/pressure/memory and
// (empty when there is none) the bench cgroup's memory.pressure.
Result<Sample> sample_from_text(double t, std::string_view vmstat, std::string_view psi_memory,
                                std::string_view cgroup_pressure);

// Between two consecutive samples: swap rates and the share of the
// interval stalled (percent, like PSI's avg10).
struct Interval {
  double t = 0;  // end of the interval
  double swapin_mib_s = 0, swapout_mib_s = 0;
  double some_pct = 0, full_pct = 0;
  double cg_some_pct = -1, cg_full_pct = -1;  // -1: no cgroup PSI
};
std::vector<Interval> intervals(const std::vector<Sample>& samples);

// Over the whole load (first to last sample).
struct LoadSummary {
  double seconds = 0;
  double swapin_mib = 0, swapout_mib = 0;      // totals
  double swapin_mib_s = 0, swapout_mib_s = 0;  // means
  double peak_swapout_mib_s = 0;
  double some_s = 0, full_s = 0;          // stall time, system memory PSI
  double cg_some_s = -1, cg_full_s = -1;  // -1: no cgroup PSI
};
LoadSummary summarize(const std::vector<Sample>& samples);

}  // namespace tierswap::bench
