// swap_hog: the VM scenario's memory hog. Run inside a cgroup whose
// memory.max is below --mib, it forces its pages out to swap, then reads
// every page back and checks it.
//
// Each 4 KiB page holds its own index, 510 pseudo-random words derived from
// (seed, index) and a checksum word over the other 511, so a page that comes
// back from swap corrupted, stale or from the wrong slot is caught and told
// apart. Rates come from /proc/vmstat's pswpout/pswpin over each phase.
//
//   swap_hog --mib N [--device /dev/nbd0] [--label NAME] [--seed S] [--hold FILE] [--backward 1]
//
// --hold FILE: after the fill, print "hog: filled label=... used_kib=..." and
// wait, touching nothing, until FILE exists; then verify. The scenario
// meanwhile kills and restarts tierswapd or drains a tier under the pages.
//
// --backward 1: verify from the last page to the first. The fill leaves the
// last pages in memory and the first ones on swap; read forwards, each
// swap-in evicts a page that is read next (every page goes out and comes
// back), read backwards, each swapped page comes back once. Same pages
// checked, about half the swap-in (which under TCG costs ~1.5 s per MiB).
//
// Prints one line "hog: label=... key=value ..." and exits 0 when every page
// verified and (with --device) the device's "Used" in /proc/swaps was above
// zero after the fill; 1 otherwise; 2 on a bad command line.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kWords = kPage / sizeof(std::uint64_t);

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

void fill_page(std::uint64_t* w, std::uint64_t index, std::uint64_t seed) {
  w[0] = index;
  const std::uint64_t base = mix(seed ^ (index * 0x100000001b3ULL));
  for (std::size_t i = 1; i + 1 < kWords; ++i) w[i] = mix(base + i);
  w[kWords - 1] = checksum(w);
}

// 0: good; 1: bad checksum (corrupted); 2: a valid page of another index or
// seed (stale or misplaced).
int check_page(const std::uint64_t* w, std::uint64_t index, std::uint64_t seed) {
  if (checksum(w) != w[kWords - 1]) return 1;
  if (w[0] != index) return 2;
  const std::uint64_t base = mix(seed ^ (index * 0x100000001b3ULL));
  for (std::size_t i = 1; i + 1 < kWords; ++i)
    if (w[i] != mix(base + i)) return 2;
  return 0;
}

std::uint64_t vmstat(const char* key) {
  std::ifstream f("/proc/vmstat");
  std::string k;
  std::uint64_t v = 0;
  while (f >> k >> v)
    if (k == key) return v;
  return 0;
}

// "Used" (KiB) of `device` in /proc/swaps; -1 when it is not listed.
long long swap_used_kib(const std::string& device) {
  std::ifstream f("/proc/swaps");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream s(line);
    std::string name, type;
    long long size = 0, used = 0;
    if (s >> name >> type >> size >> used && name == device) return used;
  }
  return -1;
}

double mib(std::uint64_t pages) {
  return static_cast<double>(pages) * static_cast<double>(kPage) / (1024.0 * 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t mib_total = 0;
  std::string device;
  std::string label = "hog";
  std::string hold;
  bool backward = false;
  std::uint64_t seed = 0x7469657273776170ULL;  // "tierswap"
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--mib")
      mib_total = std::strtoull(v, nullptr, 10);
    else if (a == "--device")
      device = v;
    else if (a == "--label")
      label = v;
    else if (a == "--hold")
      hold = v;
    else if (a == "--backward")
      backward = std::strtoull(v, nullptr, 10) != 0;
    else if (a == "--seed")
      seed = std::strtoull(v, nullptr, 0);
    else {
      std::fprintf(stderr, "swap_hog: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (mib_total == 0 || argc % 2 == 0) {
    std::fprintf(
        stderr,
        "usage: swap_hog --mib N [--device DEV] [--label NAME] [--seed S] [--hold FILE] [--backward 1]\n");
    return 2;
  }
  const std::size_t pages = mib_total * (1024 * 1024 / kPage);
  void* mem = ::mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("swap_hog: mmap");
    return 1;
  }
  auto* words = static_cast<std::uint64_t*>(mem);
  using Clock = std::chrono::steady_clock;

  const std::uint64_t out0 = vmstat("pswpout"), in0 = vmstat("pswpin");
  const auto t0 = Clock::now();
  const std::size_t every = 16U << 20 >> 12;  // progress every 16 MiB (stderr)
  for (std::size_t p = 0; p < pages; ++p) {
    fill_page(words + p * kWords, p, seed);
    if ((p + 1) % every == 0)
      std::fprintf(stderr, "swap_hog: filled %zu MiB in %.1f s, pswpout +%.1f MiB\n", (p + 1) >> 8,
                   std::chrono::duration<double>(Clock::now() - t0).count(), mib(vmstat("pswpout") - out0));
  }
  auto t1 = Clock::now();
  const auto fill_end = t1;
  std::uint64_t out1 = vmstat("pswpout"), in1 = vmstat("pswpin");
  const std::uint64_t fill_out = out1 - out0;
  const long long used = device.empty() ? 0 : swap_used_kib(device);
  if (!hold.empty()) {
    std::printf("hog: filled label=%s mib=%zu used_kib=%lld\n", label.c_str(), mib_total, used);
    std::fflush(stdout);
    struct stat st {};
    while (::stat(hold.c_str(), &st) != 0) ::usleep(100 * 1000);
    // The verify phase's rates start here, not before the hold.
    t1 = Clock::now();
    out1 = vmstat("pswpout");
    in1 = vmstat("pswpin");
  }

  std::size_t corrupted = 0, misplaced = 0;
  long long first_bad = -1;
  for (std::size_t i = 0; i < pages; ++i) {
    const std::size_t p = backward ? pages - 1 - i : i;
    const int r = check_page(words + p * kWords, p, seed);
    if (r != 0 && first_bad < 0) first_bad = static_cast<long long>(p);
    corrupted += r == 1;
    misplaced += r == 2;
  }
  const auto t2 = Clock::now();
  const std::uint64_t out2 = vmstat("pswpout"), in2 = vmstat("pswpin");

  const double fill_s = std::chrono::duration<double>(fill_end - t0).count();
  const double verify_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf(
      "hog: label=%s mib=%zu fill_s=%.2f fill_swapout_mib=%.1f swapout_mibps=%.1f used_kib=%lld "
      "verify_s=%.2f verify_swapin_mib=%.1f swapin_mibps=%.1f verify_swapout_mib=%.1f corrupted=%zu "
      "misplaced=%zu first_bad=%lld\n",
      label.c_str(), mib_total, fill_s, mib(fill_out), mib(fill_out) / fill_s, used, verify_s, mib(in2 - in1),
      mib(in2 - in1) / verify_s, mib(out2 - out1), corrupted, misplaced, first_bad);
  (void)in0;
  std::fflush(stdout);
  if (corrupted + misplaced != 0) return 1;
  if (!device.empty() && used <= 0) {
    std::fprintf(stderr, "swap_hog: %s shows no use in /proc/swaps after the fill (used=%lld)\n",
                 device.c_str(), used);
    return 1;
  }
  return 0;
}
