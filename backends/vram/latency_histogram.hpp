// A lock-free latency histogram for the exporter's figures (p50, p99).
//
// Log-linear buckets: four per power of two of nanoseconds (25% wide), so
// a percentile is exact to within a quarter. record() is one relaxed atomic
// add (any thread, no allocation); percentile() reads a snapshot, answering
// the upper bound of the bucket the percentile falls in (never optimistic).
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <utility>
#include <vector>

namespace tierswap::vram {

class LatencyHistogram {
 public:
  static constexpr unsigned kBuckets = 4 * 63;

  static unsigned bucket(std::uint64_t ns) {
    if (ns < 4) return static_cast<unsigned>(ns);
    const unsigned e = 63U - static_cast<unsigned>(std::countl_zero(ns));  // >= 2
    const unsigned mant = static_cast<unsigned>((ns >> (e - 2)) & 3U);
    return 4 * (e - 1) + mant;
  }
  // The largest value that falls in bucket b (b < kBuckets).
  static std::uint64_t upper(unsigned b) {
    if (b < 4) return b;
    const unsigned e = b / 4 + 1, mant = b % 4;
    return ((5ULL + mant) << (e - 2)) - 1;
  }

  void record(std::uint64_t ns, std::uint64_t count = 1) {
    counts_[bucket(ns)].fetch_add(count, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t total() const {
    std::uint64_t t = 0;
    for (const auto& c : counts_) t += c.load(std::memory_order_relaxed);
    return t;
  }
  // q in (0, 1]: the value below which a fraction q of the records fall
  // (bucket upper bound), 0 when empty.
  [[nodiscard]] std::uint64_t percentile(double q) const {
    std::uint64_t snap[kBuckets], t = 0;
    for (unsigned b = 0; b < kBuckets; ++b) t += snap[b] = counts_[b].load(std::memory_order_relaxed);
    if (t == 0) return 0;
    auto want = static_cast<std::uint64_t>(q * static_cast<double>(t));
    if (want == 0) want = 1;
    std::uint64_t seen = 0;
    for (unsigned b = 0; b < kBuckets; ++b) {
      seen += snap[b];
      if (seen >= want) return upper(b);
    }
    return upper(kBuckets - 1);
  }
  // The non-empty buckets, ascending: {largest value in it, records}.
  [[nodiscard]] std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets() const {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    for (unsigned b = 0; b < kBuckets; ++b)
      if (const std::uint64_t n = counts_[b].load(std::memory_order_relaxed); n > 0)
        out.emplace_back(upper(b), n);
    return out;
  }
  void reset() {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> counts_[kBuckets] = {};
};

}  // namespace tierswap::vram
