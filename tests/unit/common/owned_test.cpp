// blocks_at(): where an owned tier's blocks are, from its journal record —
// the one reading of drained/evacuated/active that the suspend guard, the
// status observer and the operation runner share.
#include "common/owned.hpp"

#include <gtest/gtest.h>

namespace tierswap {
namespace {

OwnedTier tier(bool active, bool drained, bool evacuated) {
  OwnedTier t;
  t.name = "gpu";
  t.kind = "vram";
  t.active = active;
  t.drained = drained;
  t.evacuated = evacuated;
  return t;
}

TEST(BlocksAt, EveryCombinationOfTheRecordsFlags) {
  EXPECT_EQ(blocks_at(tier(false, false, false)), BlocksAt::none);    // not set up
  EXPECT_EQ(blocks_at(tier(true, false, false)), BlocksAt::device);   // in VRAM (or zram, a file...)
  EXPECT_EQ(blocks_at(tier(true, false, true)), BlocksAt::spill);     // evacuated, the area up
  EXPECT_EQ(blocks_at(tier(true, true, false)), BlocksAt::drained);   // swapped off on request
  EXPECT_EQ(blocks_at(tier(false, true, false)), BlocksAt::drained);  // drained, whatever `active` says
  // Drained wins over evacuated: a swapped-off area holds nothing, wherever
  // its exporter keeps the blocks.
  EXPECT_EQ(blocks_at(tier(true, true, true)), BlocksAt::drained);
  // Evacuated without `active` (a record written mid-reload) still says
  // where the blocks are: the suspend guard and the runner read it so.
  EXPECT_EQ(blocks_at(tier(false, false, true)), BlocksAt::spill);
}

// The three places that used to test the flags themselves, as they read
// them before: "up" for the suspend guard (blocks in the tier's own
// memory), "drained or evacuated" after its drain, "drained" for the
// runner's spill route, "evacuated" for the observer without figures.
TEST(BlocksAt, MatchesTheReadingsItReplaces) {
  for (int bits = 0; bits < 8; ++bits) {
    const OwnedTier t = tier(bits & 1, bits & 2, bits & 4);
    const BlocksAt at = blocks_at(t);
    EXPECT_EQ(at == BlocksAt::device, t.active && !t.drained && !t.evacuated) << bits;
    EXPECT_EQ(at == BlocksAt::drained || at == BlocksAt::spill, t.drained || t.evacuated) << bits;
    EXPECT_EQ(at == BlocksAt::drained, t.drained) << bits;
    if (!t.drained) EXPECT_EQ(at == BlocksAt::spill, t.evacuated) << bits;
  }
}

}  // namespace
}  // namespace tierswap
