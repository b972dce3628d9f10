#include "bench/swap/stats.hpp"

#include <algorithm>
#include <cmath>

namespace tierswap::bench {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

std::vector<std::pair<double, double>> cdf(std::vector<double> v, std::size_t max_points) {
  std::vector<std::pair<double, double>> out;
  if (v.empty() || max_points == 0) return out;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const std::size_t points = std::min(n, std::max<std::size_t>(max_points, 2));
  for (std::size_t k = 1; k <= points; ++k) {
    const std::size_t i = (k * n + points - 1) / points - 1;  // ceil(k n / points) - 1
    out.emplace_back(v[i], static_cast<double>(i + 1) / static_cast<double>(n));
  }
  return out;
}

}  // namespace tierswap::bench
