// /proc/vmstat text -> counters ("pswpin 1234"), and swap rates from two
// samples.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace tierswap::policy {

using Vmstat = std::map<std::string, std::uint64_t, std::less<>>;

// EINVAL naming the line when a line is not "name number".
Result<Vmstat> parse_vmstat(std::string_view text);

struct SwapRates {
  double in_pages_per_s = 0, out_pages_per_s = 0;
};

// pswpin/pswpout deltas over `seconds`; a counter that went backwards (or a
// non-positive interval) gives 0.
SwapRates swap_rates(const Vmstat& before, const Vmstat& after, double seconds);

}  // namespace tierswap::policy
