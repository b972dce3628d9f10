// The checksummed hog: the load of the swap benchmark. It writes a working
// set larger than its cgroup may hold, then, until its time is up, picks
// pages at random, checks each against what it last wrote there and writes
// it anew; at the end it checks every page once more. A page that comes back
// from swap corrupted, stale or from another slot counts as bad: the run
// fails loudly instead of measuring a broken tier.
//
// Page format (4 KiB = 512 words): word 0 the page index, words 1..510
// pseudo-random from (seed, index, generation), word 511 a checksum of the
// other 511.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bench/swap/report.hpp"

namespace tierswap::bench {

inline constexpr std::size_t kHogPage = 4096;

void hog_fill_page(std::uint64_t* page, std::uint64_t index, std::uint64_t seed);
// 0 good; 1 checksum wrong (corrupted); 2 a valid page of another index or
// generation (stale or misplaced).
int hog_check_page(const std::uint64_t* page, std::uint64_t index, std::uint64_t seed);

struct HogOptions {
  std::uint64_t pages = 0;
  double seconds = 0;  // total, the first fill included
  std::uint64_t seed = 0x7469657273776170ULL;
};

// Runs in the calling process (the runner forks it into the bench cgroup).
// exit_status: 0 every page verified, 3 bad pages, 1 no memory.
HogResult run_hog(const HogOptions& o);

}  // namespace tierswap::bench
