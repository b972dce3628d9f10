// How long draining the VRAM tiers before sleep takes, against how long
// systemd-logind waits for it.
//
// logind waits for a delay inhibitor lock at most InhibitDelayMaxUSec (5 s
// by default) after it sent PrepareForSleep(true); then it suspends whether
// or not the drain finished, and the pages still in VRAM are lost. The
// drain moves each at-risk tier's used pages one tier after the other, so
// the estimate is the sum of used / rate over them:
//   rate = the rate this tier's last drain was observed at (the suspend
//          guard times its own drains), else
//          kSwapoffDrainBytesPerSecond  without `spill:` (swapoff pages every
//                                       page back in and out again), or
//          kSpillDrainBytesPerSecond    with `spill:` (the exporter moves
//                                       whole chunks to its spill store).
// Both constants are conservative on purpose (a warning too early costs a
// config line; too late costs the pages): swapoff of an NBD area reads page
// by page, which on the VM measurements (bench/results/vm-swap.md) ran far
// below 100 MiB/s and on real disks rarely exceeds a few hundred MiB/s; the
// slowest spill evacuation measured is the file spill on a loaded CPU
// machine, 0.34 GB/s (bench/results/evac-cpu.md; lz4 on the H200 3.2 GB/s
// cold, bench/results/evac-gpu.md).
//
// Pure: values in, a sentence with the numbers and the fix out.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tierswap::policy {

inline constexpr std::uint64_t kSwapoffDrainBytesPerSecond = 100ULL << 20;
inline constexpr std::uint64_t kSpillDrainBytesPerSecond = 300ULL << 20;
// Where the recommended setting goes.
inline constexpr const char* kLogindDropIn = "/etc/systemd/logind.conf.d/tierswap.conf";

struct DrainTier {
  std::string name;
  std::uint64_t used_bytes = 0;  // pages it holds in VRAM
  bool spill = false;            // evacuates to its spill store instead of swapoff
  // The rate its last drain ran at, bytes per second (0: none observed).
  std::uint64_t observed_bytes_per_second = 0;
};

struct SleepDrainEstimate {
  double seconds = 0;  // the drain of every tier, one after the other
  // InhibitDelayMaxSec to recommend: twice the estimate, rounded up to a
  // multiple of 5 s, at least 10 s.
  std::uint64_t recommend_seconds = 0;
  std::string detail;  // "tier gpu: 12 GiB by swapoff at 100 MiB/s (assumed)"; tiers joined by "; "
};

SleepDrainEstimate estimate_sleep_drain(const std::vector<DrainTier>& tiers);

// The warning when the drain of `tiers` takes longer than logind's
// `delay_max`, or nullopt when it fits: "draining before sleep takes about
// 123 s (tier gpu: ...), but logind waits at most 5 s
// (InhibitDelayMaxUSec): it would suspend mid-drain and lose the pages
// still in VRAM; set InhibitDelayMaxSec=250 in
// /etc/systemd/logind.conf.d/tierswap.conf ([Login] section; then
// systemctl kill -s HUP systemd-logind), or give the tier a spill: (an
// evacuation moves whole chunks, much faster than swapoff)".
std::optional<std::string> sleep_drain_warning(const std::vector<DrainTier>& tiers,
                                               std::chrono::microseconds delay_max);

}  // namespace tierswap::policy
