#include "bench/swap/samples.hpp"

#include <algorithm>

#include "backends/hostfs/paths.hpp"
#include "policy/psi.hpp"
#include "policy/vmstat.hpp"

namespace tierswap::bench {
namespace {

constexpr double kPageMiB = 4096.0 / (1024.0 * 1024.0);

double delta(std::uint64_t a, std::uint64_t b) {
  return b >= a ? static_cast<double>(b - a) : 0.0;  // a counter going back: a reset, not a negative
}

}  // namespace

Result<Sample> sample_from_text(double t, std::string_view vmstat, std::string_view psi_memory,
                                std::string_view cgroup_pressure) {
  auto vm = policy::parse_vmstat(vmstat);
  if (!vm) return std::unexpected(vm.error());
  auto psi = policy::parse_psi(psi_memory, paths::proc_pressure_memory);
  if (!psi) return std::unexpected(psi.error());
  Sample s;
  s.t = t;
  auto get = [&](const char* k) {
    auto it = vm->find(k);
    return it == vm->end() ? std::uint64_t{0} : it->second;
  };
  s.pswpin = get("pswpin");
  s.pswpout = get("pswpout");
  s.some_us = psi->some.total_us;
  s.full_us = psi->full.total_us;
  if (!cgroup_pressure.empty()) {
    auto cg = policy::parse_psi(cgroup_pressure, "memory.pressure");
    if (!cg) return std::unexpected(cg.error());
    s.cg_some_us = cg->some.total_us;
    s.cg_full_us = cg->full.total_us;
  }
  return s;
}

std::vector<Interval> intervals(const std::vector<Sample>& samples) {
  std::vector<Interval> out;
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const Sample& a = samples[i - 1];
    const Sample& b = samples[i];
    const double dt = b.t - a.t;
    if (dt <= 0) continue;
    Interval iv;
    iv.t = b.t;
    iv.swapin_mib_s = delta(a.pswpin, b.pswpin) * kPageMiB / dt;
    iv.swapout_mib_s = delta(a.pswpout, b.pswpout) * kPageMiB / dt;
    // total is microseconds stalled; over dt seconds that is a share of 1e6 dt.
    iv.some_pct = std::min(100.0, delta(a.some_us, b.some_us) / (dt * 1e4));
    iv.full_pct = std::min(100.0, delta(a.full_us, b.full_us) / (dt * 1e4));
    if (a.cg_some_us && b.cg_some_us && a.cg_full_us && b.cg_full_us) {
      iv.cg_some_pct = std::min(100.0, delta(*a.cg_some_us, *b.cg_some_us) / (dt * 1e4));
      iv.cg_full_pct = std::min(100.0, delta(*a.cg_full_us, *b.cg_full_us) / (dt * 1e4));
    }
    out.push_back(iv);
  }
  return out;
}

LoadSummary summarize(const std::vector<Sample>& samples) {
  LoadSummary s;
  if (samples.size() < 2) return s;
  const Sample& a = samples.front();
  const Sample& b = samples.back();
  s.seconds = b.t - a.t;
  s.swapin_mib = delta(a.pswpin, b.pswpin) * kPageMiB;
  s.swapout_mib = delta(a.pswpout, b.pswpout) * kPageMiB;
  if (s.seconds > 0) {
    s.swapin_mib_s = s.swapin_mib / s.seconds;
    s.swapout_mib_s = s.swapout_mib / s.seconds;
  }
  for (const auto& iv : intervals(samples))
    s.peak_swapout_mib_s = std::max(s.peak_swapout_mib_s, iv.swapout_mib_s);
  s.some_s = delta(a.some_us, b.some_us) / 1e6;
  s.full_s = delta(a.full_us, b.full_us) / 1e6;
  if (a.cg_some_us && b.cg_some_us && a.cg_full_us && b.cg_full_us) {
    s.cg_some_s = delta(*a.cg_some_us, *b.cg_some_us) / 1e6;
    s.cg_full_s = delta(*a.cg_full_us, *b.cg_full_us) / 1e6;
  }
  return s;
}

}  // namespace tierswap::bench
