// The drain before sleep against logind's InhibitDelayMaxUSec (label
// unit): the estimate per tier (swapoff, spill, an observed rate), the
// warning with the numbers and the InhibitDelayMaxSec to set, and none when
// the drain fits.
#include "policy/sleep_drain.hpp"

#include <gtest/gtest.h>

using namespace tierswap::policy;
using namespace std::chrono_literals;

namespace {
constexpr std::uint64_t MiB = 1ULL << 20;
constexpr std::uint64_t GiB = 1ULL << 30;
}  // namespace

TEST(SleepDrain, EstimateUsesTheRateOfEachTiersWayOut) {
  const auto e = estimate_sleep_drain({{"a", 1 * GiB, false, 0},            // swapoff, 10.24 s
                                       {"b", 3 * GiB, true, 0},             // spill, 10.24 s
                                       {"c", 512 * MiB, false, 256 * MiB},  // its last drain: 2 s
                                       {"d", 0, false, 0}});                // nothing to move
  EXPECT_NEAR(e.seconds, 1024.0 / 100 + 3072.0 / 300 + 2, 1e-9);
  EXPECT_EQ(e.recommend_seconds, 45u);  // 2 x 22.48 s = 45 -> 45
  EXPECT_EQ(
      e.detail,
      "tier a: 1.0 GiB by swapoff at 100 MiB/s (assumed); tier b: 3.0 GiB by evacuation to its spill at "
      "300 MiB/s (assumed); tier c: 512 MiB by swapoff at 256 MiB/s (its last drain)");
  EXPECT_EQ(estimate_sleep_drain({}).recommend_seconds, 10u);  // the floor
}

TEST(SleepDrain, WarnsWithTheNumbersAndTheFixWhenLogindWaitsLess) {
  const auto w = sleep_drain_warning({{"gpu", 12 * GiB, false, 0}}, 5s);
  ASSERT_TRUE(w);
  EXPECT_EQ(
      *w,
      "draining before sleep takes about 123 s (tier gpu: 12 GiB by swapoff at 100 MiB/s (assumed)), but "
      "logind waits at most 5.0 s (InhibitDelayMaxUSec): it would suspend mid-drain and lose the pages "
      "still in VRAM; set InhibitDelayMaxSec=250 in /etc/systemd/logind.conf.d/tierswap.conf ([Login] "
      "section; then systemctl kill -s HUP systemd-logind), or give the tier a spill: (an evacuation moves "
      "whole chunks, faster than swapoff)");
  // A tier with a spill is not told to get one.
  const auto s = sleep_drain_warning({{"gpu", 12 * GiB, true, 0}}, 5s);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->find("give the tier a spill"), std::string::npos) << *s;
}

TEST(SleepDrain, NoWarningWhenTheDrainFits) {
  EXPECT_FALSE(sleep_drain_warning({{"gpu", 256 * MiB, false, 0}}, 5s));  // 2.56 s
  EXPECT_FALSE(sleep_drain_warning({{"gpu", 0, false, 0}}, 0s));
  EXPECT_TRUE(sleep_drain_warning({{"gpu", 256 * MiB, false, 0}}, 2s));
}
