#include "bench/swap/hog.hpp"

#include <sys/mman.h>

#include <chrono>
#include <vector>

namespace tierswap::bench {
namespace {

constexpr std::size_t kWords = kHogPage / sizeof(std::uint64_t);

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t checksum(const std::uint64_t* w) {
  std::uint64_t c = 0x6a09e667f3bcc909ULL;
  for (std::size_t i = 0; i + 1 < kWords; ++i) c = mix(c ^ w[i]);
  return c;
}

std::uint64_t gen_seed(std::uint64_t seed, std::uint8_t gen) {
  return seed ^ (static_cast<std::uint64_t>(gen) * 0x9e3779b97f4a7c15ULL);
}

}  // namespace

void hog_fill_page(std::uint64_t* w, std::uint64_t index, std::uint64_t seed) {
  w[0] = index;
  const std::uint64_t base = mix(seed ^ (index * 0x100000001b3ULL));
  // Half the words repeat (like real anonymous memory, it compresses).
  for (std::size_t i = 1; i + 1 < kWords; ++i) w[i] = (i & 1) ? mix(base + i) : base;
  w[kWords - 1] = checksum(w);
}

int hog_check_page(const std::uint64_t* w, std::uint64_t index, std::uint64_t seed) {
  if (checksum(w) != w[kWords - 1]) return 1;
  if (w[0] != index) return 2;
  const std::uint64_t base = mix(seed ^ (index * 0x100000001b3ULL));
  for (std::size_t i = 1; i + 1 < kWords; ++i)
    if (w[i] != ((i & 1) ? mix(base + i) : base)) return 2;
  return 0;
}

HogResult run_hog(const HogOptions& o) {
  using Clock = std::chrono::steady_clock;
  HogResult r;
  r.pages = o.pages;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  void* mem = ::mmap(nullptr, o.pages * kHogPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    r.exit_status = 1;
    return r;
  }
  auto* words = static_cast<std::uint64_t*>(mem);
  std::vector<std::uint8_t> gen(o.pages, 0);
  for (std::uint64_t p = 0; p < o.pages; ++p) hog_fill_page(words + p * kWords, p, gen_seed(o.seed, 0));
  r.fill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::uint64_t x = o.seed | 1;
  while (Clock::now() < end) {
    for (int k = 0; k < 64; ++k) {              // check the clock every 64 pages
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
      const std::uint64_t p = x % o.pages;
      std::uint64_t* w = words + p * kWords;
      if (hog_check_page(w, p, gen_seed(o.seed, gen[p])) != 0) ++r.bad_pages;
      hog_fill_page(w, p, gen_seed(o.seed, ++gen[p]));
      ++r.touches;
    }
  }
  for (std::uint64_t p = 0; p < o.pages; ++p)
    if (hog_check_page(words + p * kWords, p, gen_seed(o.seed, gen[p])) != 0) ++r.bad_pages;
  ::munmap(mem, o.pages * kHogPage);
  r.exit_status = r.bad_pages ? 3 : 0;
  return r;
}

}  // namespace tierswap::bench
