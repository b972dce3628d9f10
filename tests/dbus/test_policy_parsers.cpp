// policy/ parsers: PSI, meminfo, vmstat, zram mm_stat (text in, values out).
#include <gtest/gtest.h>

#include "policy/meminfo.hpp"
#include "policy/pressure_alert.hpp"
#include "policy/psi.hpp"
#include "policy/vmstat.hpp"
#include "policy/zram_mm_stat.hpp"

namespace tierswap::policy {
namespace {

TEST(Psi, ParsesSomeAndFull) {
  auto p = parse_psi(
      "some avg10=0.12 avg60=0.30 avg300=0.25 total=123456\n"
      "full avg10=0.00 avg60=0.01 avg300=0.00 total=4567\n");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_DOUBLE_EQ(p->some.avg10, 0.12);
  EXPECT_DOUBLE_EQ(p->some.avg300, 0.25);
  EXPECT_EQ(p->some.total_us, 123456u);
  EXPECT_TRUE(p->has_full);
  EXPECT_DOUBLE_EQ(p->full.avg60, 0.01);
  EXPECT_EQ(p->full.total_us, 4567u);
}

TEST(Psi, CpuWithoutFullLine) {
  auto p = parse_psi("some avg10=1.00 avg60=2.00 avg300=3.00 total=9\n");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->has_full);
}

TEST(Psi, RejectsGarbageNamingTheLine) {
  auto p = parse_psi("some avg10=x avg60=0 avg300=0 total=1\n", "/proc/pressure/memory");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, EINVAL);
  EXPECT_NE(p.error().message.find("/proc/pressure/memory:1: avg10=\"x\""), std::string::npos)
      << p.error().message;
  EXPECT_FALSE(parse_psi(""));
  EXPECT_FALSE(parse_psi("some avg10=1\n"));
  EXPECT_FALSE(parse_psi("partial avg10=1 avg60=1 avg300=1 total=1\n"));
}

TEST(Meminfo, ParsesKilobytesAndCounts) {
  auto m = parse_meminfo(
      "MemTotal:       16303452 kB\nMemAvailable:    8123456 kB\n"
      "SwapTotal:       8388604 kB\nSwapFree:        8388604 kB\nHugePages_Total:       0\n");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->mem_total(), 16303452ull * 1024);
  EXPECT_EQ(m->mem_available(), 8123456ull * 1024);
  EXPECT_EQ(m->swap_free(), 8388604ull * 1024);
  EXPECT_EQ(m->get("HugePages_Total"), 0u);
  EXPECT_FALSE(m->get("Nope"));
}

TEST(Meminfo, Rejects) {
  EXPECT_FALSE(parse_meminfo("MemFree: 1 kB\n"));  // no MemTotal
  auto m = parse_meminfo("MemTotal: lots kB\n");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("/proc/meminfo:1: MemTotal"), std::string::npos);
  EXPECT_FALSE(parse_meminfo("MemTotal: 1 MB\n"));
}

TEST(Vmstat, CountersAndRates) {
  auto a = parse_vmstat("nr_free_pages 100\npswpin 1000\npswpout 5000\n");
  auto b = parse_vmstat("nr_free_pages 90\npswpin 1100\npswpout 5400\n");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->at("pswpout"), 5000u);
  auto r = swap_rates(*a, *b, 2.0);
  EXPECT_DOUBLE_EQ(r.in_pages_per_s, 50);
  EXPECT_DOUBLE_EQ(r.out_pages_per_s, 200);
  EXPECT_DOUBLE_EQ(swap_rates(*b, *a, 2.0).in_pages_per_s, 0);  // went backwards
  EXPECT_DOUBLE_EQ(swap_rates(*a, *b, 0).in_pages_per_s, 0);
  EXPECT_FALSE(parse_vmstat("pswpin\n"));
  EXPECT_FALSE(parse_vmstat("pswpin x\n"));
}

TEST(ZramMmStat, ParsesColumnsAndRatio) {
  auto s = parse_zram_mm_stat("  4096000  1024000  1200000        0  1300000      10      0      2      0\n");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->orig_data_size, 4096000u);
  EXPECT_EQ(s->compr_data_size, 1024000u);
  EXPECT_EQ(s->mem_used_total, 1200000u);
  EXPECT_EQ(s->huge_pages, 2u);
  EXPECT_DOUBLE_EQ(s->compression_ratio(), 4.0);
}

TEST(ZramMmStat, OlderKernelsAndErrors) {
  auto s = parse_zram_mm_stat("0 0 0 0 0 0 0\n");
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->compression_ratio(), 1.0);
  auto bad = parse_zram_mm_stat("1 2 x 4 5 6 7\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("column 3 (mem_used_total)"), std::string::npos);
  EXPECT_FALSE(parse_zram_mm_stat("1 2 3\n"));
}

}  // namespace
}  // namespace tierswap::policy

namespace tierswap::policy {
namespace {

TEST(PressureAlert, FiresOnceOnTheRiseAndRearmsBelowClear) {
  PressureAlertState st;
  EXPECT_FALSE(pressure_alert(st, 2.0));
  EXPECT_TRUE(pressure_alert(st, 12.5));   // rises past 10 %
  EXPECT_FALSE(pressure_alert(st, 30.0));  // still high: no second alert
  EXPECT_FALSE(pressure_alert(st, 7.0));   // between clear and raise: stays raised
  EXPECT_FALSE(pressure_alert(st, 11.0));
  EXPECT_FALSE(pressure_alert(st, 4.9));  // re-armed
  EXPECT_TRUE(pressure_alert(st, 10.0));  // at the threshold counts
}

TEST(PressureAlert, ThresholdsAreTheCallers) {
  PressureAlertState st;
  const PressureThresholds t{50.0, 40.0};
  EXPECT_FALSE(pressure_alert(st, 45.0, t));
  EXPECT_TRUE(pressure_alert(st, 55.0, t));
  EXPECT_FALSE(pressure_alert(st, 41.0, t));
  EXPECT_FALSE(pressure_alert(st, 39.0, t));
  EXPECT_TRUE(pressure_alert(st, 60.0, t));
}

}  // namespace
}  // namespace tierswap::policy
