#include "bench/swap/summary.hpp"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench/swap/samples.hpp"
#include "bench/swap/stats.hpp"

namespace tierswap::bench {
namespace {

const Group* first_ok(const Report& r) {
  for (const auto& g : r.groups)
    if (g.status == "ok") return &g;
  return nullptr;
}

std::string num(double v) {
  char b[64];
  if (std::fabs(v) >= 100)
    std::snprintf(b, sizeof b, "%.0f", v);
  else if (std::fabs(v) >= 10)
    std::snprintf(b, sizeof b, "%.1f", v);
  else
    std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string mib(std::uint64_t bytes) {
  return num(static_cast<double>(bytes) / (1024.0 * 1024.0)) + " MiB";
}

}  // namespace

std::vector<Metric> metrics(const Group& g) {
  std::vector<Metric> m;
  if (g.status != "ok") return m;
  m.push_back({"probe_p50_us", "perceived latency p50", percentile(g.probe_us, 50), "µs", true});
  m.push_back({"probe_p99_us", "perceived latency p99", percentile(g.probe_us, 99), "µs", true});
  const LoadSummary s = summarize(g.samples);
  m.push_back({"psi_full_s", "memory PSI full (system)", s.full_s, "s", true});
  m.push_back({"psi_some_s", "memory PSI some (system)", s.some_s, "s", true});
  if (s.cg_full_s >= 0) {
    m.push_back({"cg_psi_full_s", "memory PSI full (bench cgroup)", s.cg_full_s, "s", true});
    m.push_back({"cg_psi_some_s", "memory PSI some (bench cgroup)", s.cg_some_s, "s", true});
  }
  m.push_back({"swapout_mib_s", "swap-out (mean)", s.swapout_mib_s, "MiB/s", false});
  m.push_back({"swapin_mib_s", "swap-in (mean)", s.swapin_mib_s, "MiB/s", false});
  const double secs = g.seconds > 0 ? g.seconds : s.seconds;
  // Everything the hog did to a page: the first fill, the checked rewrites,
  // the final check.
  const double pages_done = static_cast<double>(2 * g.hog.pages + g.hog.touches);
  m.push_back({"hog_pages_s", "hog throughput (fill, rewrites, final check)",
               secs > 0 ? pages_done / secs : 0, "pages/s", false});
  std::vector<std::string> tiers;
  for (const auto& r : g.raw) {
    std::size_t i = 0;
    while (i < tiers.size() && tiers[i] != r.tier) ++i;
    if (i == tiers.size()) tiers.push_back(r.tier);
    const std::string k = "raw" + std::to_string(i) + "_" + r.mode;
    const std::string l = "raw " + r.mode + " " + r.tier;
    m.push_back({k + "_iops", l + " IOPS", r.iops, "IOPS", false});
    m.push_back({k + "_p50_us", l + " p50", r.p50_us, "µs", true});
    m.push_back({k + "_p99_us", l + " p99", r.p99_us, "µs", true});
    m.push_back({k + "_p999_us", l + " p99.9", r.p999_us, "µs", true});
  }
  return m;
}

std::optional<double> ratio(const Report& r, const Metric& m) {
  const Group* base = first_ok(r);
  if (!base) return std::nullopt;
  for (const auto& b : metrics(*base))
    if (b.key == m.key) {
      if (b.value == 0) return std::nullopt;
      return m.value / b.value;
    }
  return std::nullopt;
}

std::string text_report(const Report& r) {
  std::string out = "# tierswapctl bench\n\n";
  out +=
      "- date: " + r.date + "\n- machine: " + r.cpu + ", " + mib(r.ram) + " RAM, kernel " + r.kernel + "\n";
  out += "- command: `" + r.command + "`\n";
  out += "- load: checksummed hog over " + mib(r.params.working_set) + " in a cgroup (" + r.params.cgroup +
         ") limited to " + mib(r.params.memory_max) + ", " + num(r.params.seconds) +
         " s per group; perceived latency: a fixed task every " + num(r.params.probe_interval_ms) +
         " ms outside the cgroup\n";
  if (r.params.raw_seconds > 0)
    out += "- raw device: fio 4 KiB random, QD32, O_DIRECT, " + num(r.params.raw_seconds) +
           " s per job over " + mib(r.params.raw_size) + "\n";
  else
    out += "- raw device: not measured (--raw-seconds 0, or no fio)\n";
  const Group* base = first_ok(r);
  for (std::size_t i = 0; i < r.groups.size(); ++i) {
    const Group& g = r.groups[i];
    out += "\n## " + std::to_string(i + 1) + ". " + g.name + "\n\nconfig: `" + g.config + "`";
    if (!g.areas.empty()) {
      out += "; swap areas:";
      for (const auto& a : g.areas) out += " `" + a + "`";
    }
    out += "\n\n";
    if (g.status != "ok") {
      out += "**" + g.status + "**: " + g.error + "\n";
      continue;
    }
    out += "| metric | value | vs " + (base ? base->name : std::string("first")) +
           " | better |\n|---|---:|---:|---|\n";
    for (const auto& m : metrics(g)) {
      const auto q = ratio(r, m);
      out += "| " + m.label + " | " + num(m.value) + " " + m.unit + " | " + (q ? num(*q) + "×" : "–") +
             " | " + (m.lower_is_better ? "lower" : "higher") + " |\n";
    }
    out += "\nhog: " + std::to_string(g.hog.pages) + " pages, " + std::to_string(g.hog.touches) +
           " checked and rewritten after the fill, " + std::to_string(g.hog.bad_pages) + " bad; first fill " +
           num(g.hog.fill_s) + " s\n";
  }
  return out;
}

std::string summary_json(const Report& r) {
  auto j = nlohmann::ordered_json::array();
  for (const auto& g : r.groups) {
    nlohmann::ordered_json gj = {{"group", g.name}, {"status", g.status}};
    gj["metrics"] = nlohmann::ordered_json::array();
    for (const auto& m : metrics(g)) {
      const auto q = ratio(r, m);
      gj["metrics"].push_back({{"key", m.key},
                               {"label", m.label},
                               {"value", m.value},
                               {"unit", m.unit},
                               {"ratio", q ? nlohmann::ordered_json(*q) : nlohmann::ordered_json(nullptr)}});
    }
    j.push_back(gj);
  }
  return j.dump(1);
}

}  // namespace tierswap::bench
