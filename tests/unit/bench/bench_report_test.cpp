// The swap benchmark's pure layers on recorded runs: what `tierswapctl
// bench` computes and draws from a report, without running anything.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/swap/canvas.hpp"
#include "bench/swap/fio.hpp"
#include "bench/swap/hog.hpp"
#include "bench/swap/plots.hpp"
#include "bench/swap/report.hpp"
#include "bench/swap/runner.hpp"
#include "bench/swap/samples.hpp"
#include "bench/swap/stats.hpp"
#include "bench/swap/summary.hpp"
#include "tests/unit/run_command.hpp"

namespace tierswap::bench {
namespace {

const std::string kFixtures = std::string(TIERSWAP_FIXTURES_DIR) + "/bench/";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

Report recorded() {
  auto r = report_from_json(slurp(kFixtures + "report.json"));
  EXPECT_TRUE(r) << (r ? "" : r.error().describe());
  return r ? *r : Report{};
}

std::filesystem::path temp_dir(const std::string& tag) {
  auto d = std::filesystem::temp_directory_path() /
           ("tierswap-bench-test-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// ---- percentiles and CDFs ----

TEST(Stats, PercentileInterpolatesBetweenRanks) {
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);  // unsorted input
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4, 5}, 0), 1);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4, 5}, 100), 5);
  std::vector<double> v;
  for (int i = 1; i <= 1000; ++i) v.push_back(i);
  EXPECT_NEAR(percentile(v, 99), 990.01, 1e-9);
}

TEST(Stats, CdfIsMonotonicAndEndsAtTheMaximum) {
  std::vector<double> v;
  for (int i = 0; i < 5000; ++i) v.push_back((i * 7919) % 5000);
  const auto c = cdf(v, 100);
  ASSERT_EQ(c.size(), 100u);
  for (std::size_t i = 1; i < c.size(); ++i) {
    EXPECT_LE(c[i - 1].first, c[i].first);
    EXPECT_LT(c[i - 1].second, c[i].second);
  }
  EXPECT_DOUBLE_EQ(c.back().first, 4999);
  EXPECT_DOUBLE_EQ(c.back().second, 1.0);
  EXPECT_EQ(cdf({3, 1, 2}, 200).size(), 3u);  // fewer values than points
  EXPECT_TRUE(cdf({}, 10).empty());
}

// ---- samples ----

TEST(Samples, TextBecomesCountersAndIntervalsBecomeRates) {
  const std::string psi0 =
      "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n"
      "full avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n";
  const std::string psi1 =
      "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\n"
      "full avg10=0.00 avg60=0.00 avg300=0.00 total=750000\n";
  auto a = sample_from_text(0, "pgpgin 5\npswpin 100\npswpout 1000\n", psi0, "");
  auto b = sample_from_text(2, "pgpgin 9\npswpin 612\npswpout 2024\n", psi1, psi1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->pswpout, 1000u);
  EXPECT_FALSE(a->cg_some_us);
  EXPECT_EQ(*b->cg_full_us, 750000u);
  const auto iv = intervals({*a, *b});
  ASSERT_EQ(iv.size(), 1u);
  EXPECT_DOUBLE_EQ(iv[0].swapin_mib_s, 1.0);   // 512 pages in 2 s = 1 MiB/s
  EXPECT_DOUBLE_EQ(iv[0].swapout_mib_s, 2.0);  // 1024 pages in 2 s
  EXPECT_DOUBLE_EQ(iv[0].some_pct, 25.0);      // 0.5 s of 2 s
  EXPECT_DOUBLE_EQ(iv[0].full_pct, 12.5);
  EXPECT_DOUBLE_EQ(iv[0].cg_full_pct, -1);  // the first sample had no cgroup PSI
  const auto s = summarize({*a, *b});
  EXPECT_DOUBLE_EQ(s.full_s, 0.25);
  EXPECT_DOUBLE_EQ(s.swapout_mib, 4.0);
  EXPECT_DOUBLE_EQ(s.peak_swapout_mib_s, 2.0);
  EXPECT_FALSE(sample_from_text(0, "pswpin x\n", psi0, ""));
  EXPECT_FALSE(sample_from_text(0, "pswpin 1\n", "nonsense", ""));
}

TEST(Samples, ACounterGoingBackIsNotANegativeRate) {
  Sample a{0, 500, 500, 10, 10, {}, {}}, b{1, 100, 100, 5, 5, {}, {}};
  const auto iv = intervals({a, b});
  ASSERT_EQ(iv.size(), 1u);
  EXPECT_EQ(iv[0].swapin_mib_s, 0);
  EXPECT_EQ(iv[0].full_pct, 0);
}

// ---- fio ----

TEST(Fio, RecordedOutputGivesPercentilesAndIops) {
  const auto r = parse_fio_json(slurp(kFixtures + "fio-zram.json"), "/dev/zram1", "/dev/zram2");
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].mode, "randwrite");
  EXPECT_EQ((*r)[1].mode, "randread");
  for (const auto& x : *r) {
    EXPECT_EQ(x.tier, "/dev/zram1");
    EXPECT_GT(x.iops, 0);
    EXPECT_GT(x.p50_us, 0);
    EXPECT_LE(x.p50_us, x.p99_us);
    EXPECT_LE(x.p99_us, x.p999_us);
  }
  EXPECT_FALSE(parse_fio_json("fio: engine libaio not loadable\n", "t", "t"));
  EXPECT_FALSE(parse_fio_json("{\"jobs\": [{\"jobname\": \"randread\"}]}", "t", "t"));
}

TEST(Fio, AnActiveAreaIsOnlyRead) {
  const auto ro = fio_args("/dev/nbd0", false, 5, 1 << 20);
  const auto rw = fio_args("/tmp/x", true, 5, 1 << 20);
  auto has = [](const std::vector<std::string>& a, const std::string& s) {
    return std::find(a.begin(), a.end(), s) != a.end();
  };
  EXPECT_FALSE(has(ro, "--rw=randwrite"));
  EXPECT_TRUE(has(ro, "--rw=randread"));
  EXPECT_TRUE(has(rw, "--rw=randwrite"));
  for (const char* must : {"--direct=1", "--iodepth=32", "--bs=4k", "--output-format=json"})
    EXPECT_TRUE(has(rw, must)) << must;
}

// ---- the report ----

TEST(Report, RecordedRunRoundTrips) {
  const Report r = recorded();
  ASSERT_GE(r.groups.size(), 2u);
  auto again = report_from_json(to_json(r));
  ASSERT_TRUE(again) << again.error().describe();
  ASSERT_EQ(again->groups.size(), r.groups.size());
  for (std::size_t i = 0; i < r.groups.size(); ++i) {
    EXPECT_EQ(again->groups[i].name, r.groups[i].name);
    EXPECT_EQ(again->groups[i].samples.size(), r.groups[i].samples.size());
    EXPECT_EQ(again->groups[i].probe_us, r.groups[i].probe_us);
    EXPECT_EQ(again->groups[i].raw.size(), r.groups[i].raw.size());
  }
  EXPECT_EQ(to_json(*again), to_json(r));
}

TEST(Report, BadJsonNamesWhatIsWrong) {
  auto r = report_from_json("{\"version\": 1}");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("tool_version"), std::string::npos) << r.error().message;
  r = report_from_json("{\"version\": 7}");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("version 7"), std::string::npos);
  EXPECT_FALSE(report_from_json("not json"));
}

TEST(Report, RatiosAreToTheFirstGroup) {
  const Report r = recorded();
  const Group& first = r.groups[0];
  const Group& second = r.groups[1];
  for (const auto& m : metrics(second)) {
    if (m.key != "probe_p99_us") continue;
    const auto q = ratio(r, m);
    ASSERT_TRUE(q);
    EXPECT_DOUBLE_EQ(*q, percentile(second.probe_us, 99) / percentile(first.probe_us, 99));
  }
  // Made-up numbers: exact ratios, a missing key has none, a failed first
  // group is passed over.
  Report h;
  Group fail, a, b;
  fail.name = "broken";
  fail.status = "failed";
  a.name = "a";
  a.probe_us = {10, 10, 10};
  a.samples = {{0, 0, 0, 0, 0, {}, {}}, {10, 0, 2560, 0, 1'000'000, {}, {}}};
  b.name = "b";
  b.probe_us = {30, 30, 30};
  b.samples = {{0, 0, 0, 0, 0, {}, {}}, {10, 0, 5120, 0, 4'000'000, {}, {}}};
  b.raw = {{"/dev/zram1", "/dev/zram2", "randread", 1000, 5, 9, 12}};
  h.groups = {fail, a, b};
  std::map<std::string, double> got;
  for (const auto& m : metrics(h.groups[2]))
    if (auto q = ratio(h, m)) got[m.key] = *q;
  EXPECT_DOUBLE_EQ(got["probe_p99_us"], 3.0);
  EXPECT_DOUBLE_EQ(got["psi_full_s"], 4.0);
  EXPECT_DOUBLE_EQ(got["swapout_mib_s"], 2.0);
  EXPECT_EQ(got.count("raw0_randread_iops"), 0u);  // a has no raw figures
  EXPECT_TRUE(metrics(h.groups[0]).empty());
  const std::string text = text_report(h);
  EXPECT_NE(text.find("| perceived latency p99 | 30.0 µs | 3.00× | lower |"), std::string::npos) << text;
  EXPECT_NE(text.find("**failed**"), std::string::npos);
  EXPECT_NE(text.find("vs a | better |"), std::string::npos);
  EXPECT_NE(text.find("| swap-out (mean) | 2.00 MiB/s | 2.00× | higher |"), std::string::npos) << text;
}

TEST(Report, TextHasATablePerGroup) {
  const Report r = recorded();
  const std::string t = text_report(r);
  for (const auto& g : r.groups) EXPECT_NE(t.find(". " + g.name + "\n"), std::string::npos) << g.name;
  std::size_t tables = 0;
  for (std::size_t i = 0; (i = t.find("| metric | value |", i)) != std::string::npos; ++i) ++tables;
  EXPECT_EQ(tables, r.groups.size());
}

// A run without the raw phase does not claim fio ran for 0 s.
TEST(Report, TextSaysWhenTheRawDeviceWasNotMeasured) {
  Report r = recorded();
  EXPECT_NE(text_report(r).find("- raw device: fio 4 KiB random"), std::string::npos);
  r.params.raw_seconds = 0;
  const std::string t = text_report(r);
  EXPECT_EQ(t.find("- raw device: fio"), std::string::npos) << t.substr(0, 600);
  EXPECT_NE(t.find("- raw device: not measured"), std::string::npos) << t.substr(0, 600);
}

// ---- pictures ----

// Parses the SVG with Python's XML parser and prints the series' names.
std::string svg_series(const std::string& path) {
  const auto r = test::run_command(
      "python3 -c 'import sys, xml.etree.ElementTree as E; t = E.parse(sys.argv[1]); "
      "print(\",\".join(p.get(\"data-series\") for p in t.iter(\"{http://www.w3.org/2000/svg}polyline\") "
      "if p.get(\"class\") == \"series\"))' " +
      path);
  EXPECT_EQ(r.code, 0) << r.output;
  return r.output;
}

TEST(Plots, SvgIsXmlWithOneSeriesPerGroupAndPngHasTheSize) {
  const Report r = recorded();
  const auto dir = temp_dir("plots");
  auto files = write_plots(r, dir);
  ASSERT_TRUE(files) << files.error().describe();
  EXPECT_EQ(files->size(), 4u);
  std::string names;
  for (const auto& g : r.groups) names += (names.empty() ? "" : ",") + g.name;
  EXPECT_EQ(svg_series(dir / "latency-cdf.svg"), names + "\n");
  EXPECT_EQ(svg_series(dir / "psi.svg"), names + "\n");
  for (const char* png : {"latency-cdf.png", "psi.png"}) {
    const std::string b = slurp(dir / png);
    ASSERT_GT(b.size(), 24u) << png;
    EXPECT_EQ(b.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << png;
    EXPECT_EQ(b.substr(12, 4), "IHDR");
    auto be32 = [&](std::size_t at) {
      return (static_cast<unsigned char>(b[at]) << 24) | (static_cast<unsigned char>(b[at + 1]) << 16) |
             (static_cast<unsigned char>(b[at + 2]) << 8) | static_cast<unsigned char>(b[at + 3]);
    };
    EXPECT_EQ(be32(16), kPlotWidth) << png;
    EXPECT_EQ(be32(20), kPlotHeight) << png;
  }
  std::filesystem::remove_all(dir);
}

TEST(Plots, FailedGroupsAreNotDrawnAndNamesAreEscaped) {
  Report r;
  Group a, b;
  a.name = "a<&>\"b";
  a.probe_us = {1, 2, 3};
  b.name = "failed one";
  b.status = "failed";
  r.groups = {a, b};
  SvgCanvas svg(kPlotWidth, kPlotHeight);
  draw_latency_cdf(svg, r);
  const std::string s = svg.str();
  EXPECT_NE(s.find("data-series=\"a&lt;&amp;&gt;&quot;b\""), std::string::npos);
  EXPECT_EQ(s.find("failed one"), std::string::npos);
}

// ---- the hog ----

TEST(Hog, ABadPageIsCaughtAndToldApart) {
  std::array<std::uint64_t, kHogPage / 8> page{};
  hog_fill_page(page.data(), 42, 7);
  EXPECT_EQ(hog_check_page(page.data(), 42, 7), 0);
  EXPECT_EQ(hog_check_page(page.data(), 43, 7), 2);  // the page of another slot
  EXPECT_EQ(hog_check_page(page.data(), 42, 8), 2);  // a stale generation
  page[100] ^= 1;                                    // one bit flipped
  EXPECT_EQ(hog_check_page(page.data(), 42, 7), 1);
}

TEST(Hog, ShortRunInMemoryVerifiesEveryPage) {
  const HogResult h = run_hog({512, 0.2});
  EXPECT_EQ(h.exit_status, 0);
  EXPECT_EQ(h.bad_pages, 0u);
  EXPECT_EQ(h.pages, 512u);
  EXPECT_GT(h.touches, 0u);
}

// ---- safety ----

TEST(Consent, NeededWhereOtherProgramsCouldBePushedIntoSwap) {
  RunOptions o;
  o.memory_max = 256ULL << 20;
  o.working_set = 512ULL << 20;
  o.raw_size = 256ULL << 20;
  MachineFacts plenty;
  plenty.mem_available = 16ULL << 30;
  EXPECT_TRUE(consent_reasons(plenty, o).empty());
  MachineFacts tight = plenty;
  tight.mem_available = 1ULL << 30;  // less than twice 768 MiB
  ASSERT_EQ(consent_reasons(tight, o).size(), 1u);
  EXPECT_NE(consent_reasons(tight, o)[0].find("pushed into swap"), std::string::npos);
  MachineFacts swapping = plenty;
  swapping.swap_used = 1ULL << 20;
  EXPECT_EQ(consent_reasons(swapping, o).size(), 1u);
}

}  // namespace
}  // namespace tierswap::bench
