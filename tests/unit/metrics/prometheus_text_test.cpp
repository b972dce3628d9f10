// The Status model as Prometheus text: families, labels, units, escaping;
// `promtool check metrics` accepts it (skipped with the reason when promtool
// is not installed); the Grafana dashboard (packaging/grafana/) is valid
// JSON and queries only families the writer emits.
#include "metrics/prometheus_text.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "../run_command.hpp"

using namespace tierswap;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

Status sample() {
  Status s;
  s.version = "0.9.0";
  s.state = "running";
  s.config_source = "/etc/tierswap.yaml";
  s.swappiness = 150;
  s.mem_total_bytes = 16ULL << 30;
  s.mem_available_bytes = 9ULL << 30;
  s.memory_pressure.some = {1.5, 0.75, 0.25, 2'500'000};
  s.memory_pressure.full = {0.5, 0.25, 0.0, 1'000'000};
  s.io_pressure.some = {3.0, 2.0, 1.0, 7'000'000};
  s.swap_in_pages_per_s = 12.5;
  s.swap_out_pages_per_s = 40;
  TierStatus z{.name = "zram",
               .kind = "zram",
               .device = "/dev/zram0",
               .priority = 100,
               .state = TierState::active,
               .size_bytes = 8ULL << 30,
               .used_bytes = 1ULL << 30,
               .stored_bytes = 256ULL << 20,
               .compression_ratio = 4.0,
               .latency_p99_us = 0};
  TierStatus g{.name = "gpu",
               .kind = "vram",
               .device = "/dev/nbd0",
               .priority = 50,
               .state = TierState::drained,
               .size_bytes = 4ULL << 30,
               .used_bytes = 0,
               .stored_bytes = 0,
               .compression_ratio = 1.0,
               .latency_p99_us = 250};
  // The exporter's own counters: 3 reads of 12 KiB, 1 write; latencies
  // 20 us (2 requests, bucket bound 20479 ns), 3 ms (1), 2 s (1).
  g.exporter = ExporterCounters{.ops = {{"read", 3, 12288}, {"write", 1, 4096}, {"flush", 0, 0}},
                                .latency = {{20479, 2}, {3'145'727, 1}, {2'147'483'647, 1}}};
  s.tiers = {z, g};
  s.policy_actions = {{"evacuate", "reserve", 2}, {"promote", "cooldown", 1}};
  s.gpus = {{"NVIDIA H200", 141ULL << 30, 100ULL << 30, 4ULL << 30}};
  return s;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A sample's family: a histogram's _bucket/_count/_sum series belong to it.
std::string family_of(const std::string& series) {
  const auto& names = metrics::metric_family_names();
  for (const char* suffix : {"_bucket", "_count", "_sum"}) {
    if (!series.ends_with(suffix)) continue;
    const std::string base = series.substr(0, series.size() - std::string(suffix).size());
    if (std::find(names.begin(), names.end(), base) != names.end()) return base;
  }
  return series;
}

}  // namespace

TEST(PrometheusText, FamiliesLabelsAndBaseUnits) {
  const std::string t = metrics::prometheus_text(sample());
  EXPECT_THAT(t, HasSubstr("# TYPE tierswap_tier_used_bytes gauge\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_tier_used_bytes{tier=\"zram\",kind=\"zram\"} 1073741824\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_tier_size_bytes{tier=\"gpu\",kind=\"vram\"} 4294967296\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_tier_state{tier=\"gpu\",state=\"drained\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_tier_state{tier=\"gpu\",state=\"active\"} 0\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_tier_state{tier=\"gpu\",state=\"evacuated\"} 0\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_tier_compression_ratio{tier=\"zram\",kind=\"zram\"} 4\n"));
  EXPECT_THAT(t, HasSubstr("# TYPE tierswap_psi_stall_seconds_total counter\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_psi_stall_seconds_total{resource=\"memory\",kind=\"some\"} 2.5\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_psi_stall_seconds_total{resource=\"io\",kind=\"some\"} 7\n"));
  EXPECT_THAT(
      t, HasSubstr("tierswap_psi_stall_ratio{resource=\"memory\",kind=\"some\",window=\"10s\"} 0.015\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_swap_in_pages_per_second 12.5\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_swappiness 150\n"));
  // Latency only where measured (the vram tier), in seconds.
  EXPECT_THAT(t, HasSubstr("tierswap_tier_latency_p99_seconds{tier=\"gpu\",kind=\"vram\"} 0.00025\n"));
  EXPECT_THAT(t, Not(HasSubstr("tierswap_tier_latency_p99_seconds{tier=\"zram\"")));
  EXPECT_THAT(t, HasSubstr("tierswap_gpu_memory_free_bytes{gpu=\"NVIDIA H200\"} 107374182400\n"));
  // One HELP and one TYPE per family, and every sample of a family together.
  std::map<std::string, int> types;
  std::string last, line;
  std::set<std::string> closed;
  std::istringstream in(t);
  while (std::getline(in, line)) {
    if (line.starts_with("# TYPE ")) ++types[line.substr(7, line.find(' ', 7) - 7)];
    if (line.starts_with("#")) continue;
    const std::string fam = family_of(line.substr(0, line.find_first_of("{ ")));
    if (fam != last) {
      EXPECT_FALSE(closed.contains(fam)) << fam << " is split";
      closed.insert(last);
      last = fam;
    }
    EXPECT_NE(std::find(metrics::metric_family_names().begin(), metrics::metric_family_names().end(), fam),
              metrics::metric_family_names().end())
        << fam;
  }
  for (const auto& [f, n] : types) EXPECT_EQ(n, 1) << f;
}

// Status::policy_actions as a counter per (action, rule).
TEST(PrometheusText, PolicyActionsAreCountersByActionAndRule) {
  const std::string t = metrics::prometheus_text(sample());
  EXPECT_THAT(t, HasSubstr("# TYPE tierswap_policy_actions_total counter\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_policy_actions_total{action=\"evacuate\",rule=\"reserve\"} 2\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_policy_actions_total{action=\"promote\",rule=\"cooldown\"} 1\n"));
  EXPECT_THAT(metrics::prometheus_text(Status{}), Not(HasSubstr("tierswap_policy_actions_total")));
}

// The exporter's counters per op, and its latency buckets folded into the
// histogram's fixed bounds: cumulative, never counting a request below its
// bucket's bound, +Inf = _count = every request.
TEST(PrometheusText, ExporterCountersAndLatencyHistogram) {
  const std::string t = metrics::prometheus_text(sample());
  EXPECT_THAT(t, HasSubstr("tierswap_exporter_requests_total{tier=\"gpu\",op=\"read\"} 3\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_exporter_bytes_total{tier=\"gpu\",op=\"read\"} 12288\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_exporter_requests_total{tier=\"gpu\",op=\"write\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("# TYPE tierswap_exporter_request_duration_seconds histogram\n"));
  const std::string b = "tierswap_exporter_request_duration_seconds_bucket{tier=\"gpu\",le=";
  EXPECT_THAT(t, HasSubstr(b + "\"1e-05\"} 0\n"));  // 20 us is above 10 us
  EXPECT_THAT(t, HasSubstr(b + "\"2.5e-05\"} 2\n"));
  EXPECT_THAT(t, HasSubstr(b + "\"0.0025\"} 2\n"));  // 3 ms is above 2.5 ms
  EXPECT_THAT(t, HasSubstr(b + "\"0.005\"} 3\n"));
  EXPECT_THAT(t, HasSubstr(b + "\"1\"} 3\n"));  // 2 s only under +Inf
  EXPECT_THAT(t, HasSubstr(b + "\"+Inf\"} 4\n"));
  EXPECT_THAT(t, HasSubstr("tierswap_exporter_request_duration_seconds_count{tier=\"gpu\"} 4\n"));
  // A tier without exporter counters (zram) has none of these lines.
  EXPECT_THAT(t, Not(HasSubstr("tier=\"zram\",op=")));
  EXPECT_THAT(t, Not(HasSubstr("_bucket{tier=\"zram\"")));
}

TEST(PrometheusText, EmptyStatusHasNoTierLines) {
  const std::string t = metrics::prometheus_text(Status{});
  EXPECT_THAT(t, Not(HasSubstr("tierswap_tier_")));
  EXPECT_THAT(t, Not(HasSubstr("tierswap_swappiness")));  // -1: unknown
  EXPECT_THAT(t, HasSubstr("tierswap_daemon_info{"));
}

TEST(PrometheusText, LabelValuesAreEscaped) {
  EXPECT_EQ(metrics::escape_label_value(R"(a\b"c)"
                                        "\n"
                                        "d"),
            R"(a\\b\"c\nd)");
  Status s = sample();
  s.tiers[0].name = "we\"ird\\name";
  s.config_source = "/etc/tier\nswap.yaml";
  const std::string t = metrics::prometheus_text(s);
  EXPECT_THAT(t, HasSubstr(R"(tierswap_tier_used_bytes{tier="we\"ird\\name",kind="zram"} )"));
  EXPECT_THAT(t, HasSubstr(R"(config="/etc/tier\nswap.yaml")"));
  // No raw newline inside a sample: every line starts with # or tierswap_.
  std::istringstream in(t);
  std::string line;
  while (std::getline(in, line)) EXPECT_TRUE(line.starts_with("#") || line.starts_with("tierswap_")) << line;
}

TEST(PrometheusText, PromtoolAccepts) {
  if (test::run_command("command -v promtool").code != 0)
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus)";
  Status s = sample();
  s.tiers[0].name = "we\"ird\\name";
  const auto file = std::filesystem::temp_directory_path() / ("tierswap-metrics-" + std::to_string(getpid()));
  std::ofstream(file) << metrics::prometheus_text(s);
  auto r = test::run_command("promtool check metrics < " + file.string());
  std::filesystem::remove(file);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "") << "promtool's lint findings";
}

// --- the Grafana dashboard -----------------------------------------------------

TEST(GrafanaDashboard, IsJsonAndQueriesOnlyEmittedFamilies) {
  const auto path = std::filesystem::path(TIERSWAP_SOURCE_DIR) / "packaging/grafana/tierswap.json";
  nlohmann::json d;
  ASSERT_NO_THROW(d = nlohmann::json::parse(slurp(path))) << path;
  ASSERT_TRUE(d.contains("panels"));
  const auto& names = metrics::metric_family_names();
  const std::regex metric("tierswap_[a-z0-9_]+");
  int exprs = 0;
  std::set<std::string> used;
  for (const auto& panel : d["panels"]) {
    ASSERT_TRUE(panel.contains("title")) << panel.dump();
    if (panel.value("type", "") == "row") continue;
    ASSERT_TRUE(panel.contains("targets") && !panel["targets"].empty()) << panel["title"];
    for (const auto& target : panel["targets"]) {
      const std::string expr = target.at("expr");
      ++exprs;
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
        const std::string fam = family_of(it->str());
        used.insert(fam);
        EXPECT_NE(std::find(names.begin(), names.end(), fam), names.end())
            << panel["title"] << ": " << it->str() << " is not a family prometheus_text() emits";
      }
    }
  }
  EXPECT_GE(exprs, 6);
  for (const char* core : {"tierswap_tier_used_bytes", "tierswap_tier_size_bytes", "tierswap_tier_state",
                           "tierswap_psi_stall_seconds_total", "tierswap_policy_actions_total",
                           "tierswap_exporter_requests_total", "tierswap_exporter_request_duration_seconds"})
    EXPECT_TRUE(used.contains(core)) << "the dashboard does not show " << core;
}
