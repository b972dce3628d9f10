// Percentiles and CDFs of latency samples (pure).
#pragma once

#include <utility>
#include <vector>

namespace tierswap::bench {

// The p-th percentile (0 <= p <= 100) of `v` by linear interpolation
// between closest ranks (numpy's default); 0 for an empty vector.
double percentile(std::vector<double> v, double p);

// The empirical CDF of `v` as (value, fraction <= value) points, sorted by
// value, at most `max_points` of them (evenly spaced in rank; the last is
// always the maximum at 1.0). Empty for an empty vector.
std::vector<std::pair<double, double>> cdf(std::vector<double> v, std::size_t max_points = 200);

}  // namespace tierswap::bench
