// policy_bench: how long policy::decide() takes per snapshot, and how long
// `tierswapctl simulate` needs for a 24 h trace at one snapshot a second
// (86400 JSON lines: parse_trace() + simulate()). The trace is made here:
// quiet stretches, a GPU program's bursts every 10 min, io pressure waves,
// an afternoon on battery and an evening in which a named service stalls
// on memory while the tier is slow (two cgroups named, as `cgroups:` in the
// config records them), so every rule and the cool-down run.
//
//   policy_bench [SECONDS_OF_TRACE]     (default 86400)
//
// Prints the figures and the budgets of issue 9 beside them; exit status 1
// when a budget is missed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "policy/decide.hpp"
#include "policy/trace.hpp"

namespace {

using namespace tierswap::policy;
using Clock = std::chrono::steady_clock;

constexpr unsigned long long kMiB = 1ULL << 20;

std::string make_trace(unsigned seconds) {
  std::string out;
  out.reserve(static_cast<std::size_t>(seconds) * 560);
  char line[768];
  for (unsigned t = 0; t < seconds; ++t) {
    const bool burst = t % 600 < 60 && t >= 600;
    const unsigned long long foreign = (512 + (burst ? 3072 : 0)) * kMiB;
    const double io = (t / 1800 % 4 == 3) ? 25.0 + (t % 7) : 1.0 + (t % 5);
    const bool stall = t >= 20 * 3600 && t < 21 * 3600;
    const unsigned p99 = io > 20 || stall ? 3000 : 250;
    const bool battery = t >= 13 * 3600 && t < 15 * 3600;
    const double full = stall ? 12.0 + (t % 5) : 0.5 * (t % 3);
    std::snprintf(
        line, sizeof line,
        "{\"t_ms\":%llu,\"memory\":{\"some\":0.5,\"full\":0.0},\"io\":{\"some\":%.2f,\"full\":0.25},"
        "\"mem_available_bytes\":8589934592,\"mem_total_bytes\":17179869184,"
        "\"swap_used_bytes\":{\"zram\":268435456,\"vram\":134217728},"
        "\"vram\":[{\"tier\":\"vram\",\"free_bytes\":%llu,\"total_bytes\":25769803776,"
        "\"foreign_bytes\":%llu,\"p99_us\":%u,\"size_bytes\":4294967296}],"
        "\"cgroup_memory\":{\"postgresql.service\":{\"some\":%.2f,\"full\":%.2f},"
        "\"system.slice\":{\"some\":0.2,\"full\":0.0}},\"swap_in_pages_per_s\":%u,\"on_battery\":%s}\n",
        static_cast<unsigned long long>(t) * 1000, io, 20480 * kMiB - foreign, foreign, p99, full * 1.5, full,
        stall ? 3000U : 40U, battery ? "true" : "false");
    out += line;
  }
  return out;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned seconds = argc > 1 ? static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10)) : 86400;
  const std::string text = make_trace(seconds);

  // simulate: parse + replay, the way `tierswapctl simulate` runs it (best of 3).
  double best_sim = 1e9, best_parse = 1e9;
  std::size_t actions = 0;
  std::vector<Snapshot> trace;
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    auto parsed = parse_trace(text, "bench");
    best_parse = std::min(best_parse, seconds_since(start));
    if (!parsed) {
      std::fprintf(stderr, "policy_bench: %s\n", parsed.error().message.c_str());
      return 2;
    }
    actions = simulate(*parsed, PolicySpec{}).size();
    best_sim = std::min(best_sim, seconds_since(start));
    trace = std::move(*parsed);
  }

  // decide() alone, over the parsed trace, carrying the state as the daemon does.
  const PolicySpec spec;
  double best_decide = 1e9;
  for (int i = 0; i < 3; ++i) {
    PolicyState state;
    const auto start = Clock::now();
    for (const auto& s : trace) state = decide(s, state, spec).next;
    best_decide = std::min(best_decide, seconds_since(start));
  }
  const double per_snapshot_us = best_decide * 1e6 / static_cast<double>(trace.size());

  std::printf("trace: %u s at 1 snapshot/s, %zu bytes, %zu actions\n", seconds, text.size(), actions);
  std::printf("decide(): %.3f us per snapshot (budget 50 us)\n", per_snapshot_us);
  std::printf("simulate (parse + decide): %.3f s (budget 1 s for 24 h), of which parse_trace() %.3f s\n",
              best_sim, best_parse);
  const bool ok = per_snapshot_us <= 50 && (seconds < 86400 || best_sim <= 1.0);
  return ok ? 0 : 1;
}
