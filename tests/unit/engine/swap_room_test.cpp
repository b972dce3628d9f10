// The room rule for swapoff (policy/swap_room.hpp): its edge cases, with
// plain values (no files).
#include "policy/swap_room.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>

using namespace tierswap::policy;

namespace {
constexpr std::uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

RoomArea file(std::string path, std::uint64_t size, std::uint64_t used = 0) {
  return RoomArea{.path = std::move(path), .size_bytes = size, .used_bytes = used};
}
RoomArea zram(std::string path, std::uint64_t size, std::uint64_t used, std::uint64_t mem_limit,
              std::uint64_t mem_used, double ratio) {
  return RoomArea{.path = std::move(path),
                  .size_bytes = size,
                  .used_bytes = used,
                  .zram = true,
                  .mem_limit = mem_limit,
                  .mem_used = mem_used,
                  .ratio = ratio};
}
}  // namespace

TEST(SwapRoom, NothingToMoveAlwaysFitsEvenWithNowhereToGo) {
  const auto v = swapoff_room({.need_bytes = 0});
  EXPECT_TRUE(v.fits);
  EXPECT_EQ(v.margin, 0u);
  EXPECT_EQ(v.room, 0u);
  EXPECT_EQ(v.areas, 0);
}

TEST(SwapRoom, PagesWithNoOtherAreaDoNotFit) {
  const auto v = swapoff_room({.need_bytes = 4096});
  EXPECT_FALSE(v.fits);
  EXPECT_EQ(v.margin, kMarginFloor);
}

TEST(SwapRoom, MarginIsTheFloorForSmallNeedsAndAnEighthForLargeOnes) {
  EXPECT_EQ(swapoff_room({.need_bytes = 1 * MiB}).margin, kMarginFloor);
  EXPECT_EQ(swapoff_room({.need_bytes = 800 * MiB}).margin, 100 * MiB);
}

TEST(SwapRoom, ExactlyNeedPlusMarginFitsOneByteLessDoesNot) {
  const std::uint64_t need = 80 * MiB, margin = 10 * MiB;
  auto v = swapoff_room({.need_bytes = need, .others = {file("/swap", need + margin + 4 * MiB, 4 * MiB)}});
  EXPECT_TRUE(v.fits);
  EXPECT_EQ(v.room, need + margin);
  v = swapoff_room({.need_bytes = need, .others = {file("/swap", need + margin + 4 * MiB - 1, 4 * MiB)}});
  EXPECT_FALSE(v.fits);
  EXPECT_EQ(v.room, need + margin - 1);
}

TEST(SwapRoom, OverfullAreaCountsNothing) {
  const auto v = swapoff_room({.need_bytes = MiB, .others = {file("/swap", 10 * MiB, 20 * MiB)}});
  EXPECT_EQ(v.room, 0u);
  EXPECT_FALSE(v.fits);
}

TEST(SwapRoom, ZramCountsWhatItsMemLimitHoldsAtItsRatioNotItsDisksize) {
  // 8 GiB disksize, mem_limit 512 MiB of which 256 MiB used, ratio 3:
  // 768 MiB more, although 7 GiB of disksize are free.
  const auto z = zram("/dev/zram0", 8 * GiB, GiB, 512 * MiB, 256 * MiB, 3.0);
  const auto v = swapoff_room({.need_bytes = 2 * GiB, .others = {z}, .mem_available = 16 * GiB});
  EXPECT_EQ(v.room, 768 * MiB);
  EXPECT_FALSE(v.fits);
}

TEST(SwapRoom, ZramWithoutMemLimitIsBoundByFreeRam) {
  const auto z = zram("/dev/zram0", 8 * GiB, 0, 0, 0, 2.0);
  EXPECT_EQ(swapoff_room({.need_bytes = GiB, .others = {z}, .mem_available = GiB}).room, 2 * GiB);
  // ... and by its free disksize when RAM is plentiful.
  EXPECT_EQ(swapoff_room({.need_bytes = GiB, .others = {z}, .mem_available = 64 * GiB}).room, 8 * GiB);
}

TEST(SwapRoom, ZramAtItsMemLimitTakesNothing) {
  const auto z = zram("/dev/zram0", 8 * GiB, GiB, 512 * MiB, 600 * MiB, 4.0);
  EXPECT_EQ(swapoff_room({.need_bytes = MiB, .others = {z}, .mem_available = 16 * GiB}).room, 0u);
}

TEST(SwapRoom, RatioBelowOneOrUnknownCountsAsOne) {
  for (double r :
       {0.0, 0.5, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    const auto z = zram("/dev/zram0", 8 * GiB, 0, 100 * MiB, 0, r);
    EXPECT_EQ(swapoff_room({.need_bytes = MiB, .others = {z}, .mem_available = 16 * GiB}).room, 100 * MiB)
        << r;
  }
}

TEST(SwapRoom, TwoZramAreasShareFreeRamOnce) {
  // 1 GiB of free RAM, no mem_limit, ratio 1: both together take 1 GiB, not 2.
  const auto a = zram("/dev/zram0", 4 * GiB, 0, 0, 0, 1.0), b = zram("/dev/zram1", 4 * GiB, 0, 0, 0, 1.0);
  const auto v = swapoff_room({.need_bytes = MiB, .others = {a, b}, .mem_available = GiB});
  EXPECT_EQ(v.room, GiB);
  EXPECT_EQ(v.areas, 2);
}

TEST(SwapRoom, CommittedBytesComeOffTheRoomAndNeverBelowZero) {
  auto v =
      swapoff_room({.need_bytes = MiB, .others = {file("/swap", 100 * MiB)}, .committed_bytes = 40 * MiB});
  EXPECT_EQ(v.room, 60 * MiB);
  EXPECT_EQ(v.committed, 40 * MiB);
  v = swapoff_room({.need_bytes = MiB, .others = {file("/swap", 100 * MiB)}, .committed_bytes = 400 * MiB});
  EXPECT_EQ(v.room, 0u);
  EXPECT_FALSE(v.fits);
}

TEST(SwapRoomSequence, EachSwapoffSeesOnlyTheAreasThatRemainWithWhatEarlierOnesMoved) {
  // Lowest first: the file's 30 MiB go into the zram area (room); then the
  // zram area's 10 MiB plus those 30 MiB have nowhere left: it stays.
  const std::vector<RoomArea> areas = {zram("/dev/zram0", GiB, 10 * MiB, 0, 0, 1.0),
                                       file("/f", 64 * MiB, 30 * MiB)};
  const auto v = swapoff_sequence_room({"/f", "/dev/zram0"}, areas, 16 * GiB);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_TRUE(v[0].fits);
  EXPECT_EQ(v[0].areas, 1);
  EXPECT_FALSE(v[1].fits);
  EXPECT_EQ(v[1].areas, 0);
  EXPECT_EQ(v[1].need, 10 * MiB);
}

TEST(SwapRoomSequence, AnAreaThatStaysCountsAsRoomForTheLaterOnes) {
  const std::vector<RoomArea> areas = {file("/foreign", 100 * MiB), file("/a", 64 * MiB, 60 * MiB),
                                       file("/b", 200 * MiB, 40 * MiB)};
  // /a (60 MiB + 7.5 MiB margin) fits into /b + /foreign; then /b (40 MiB)
  // has /foreign (100 MiB) minus the 60 MiB /a moved: 40 MiB < 45 MiB: stays.
  auto v = swapoff_sequence_room({"/a", "/b"}, areas, 0);
  EXPECT_TRUE(v[0].fits);
  EXPECT_FALSE(v[1].fits);
  EXPECT_EQ(v[1].room, 40 * MiB);
  EXPECT_EQ(v[1].committed, 60 * MiB);
  // The other way round, /b stays first... and /a still fits into what remains (/b itself included).
  v = swapoff_sequence_room({"/b", "/a"}, {file("/foreign", 10 * MiB), areas[1], areas[2]}, 0);
  EXPECT_FALSE(v[0].fits);  // /b: 40 MiB; /foreign 10 + /a 4 MiB free
  EXPECT_TRUE(v[1].fits);   // /a: 60 MiB into /b's 160 MiB free + /foreign
  EXPECT_EQ(v[1].areas, 2);
}

TEST(SwapRoomSequence, APathNotActiveNeedsNothing) {
  const auto v = swapoff_sequence_room({"/gone"}, {file("/f", MiB)}, 0);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].fits);
  EXPECT_EQ(v[0].need, 0u);
}

// RAM as room (RamRoom): MemAvailable after the zram areas, less the
// reserve; the swapped-out bytes of cgroups at their limit count against
// swap only.
namespace {
CgroupSwap cgroup(std::string path, std::uint64_t swap, std::uint64_t current,
                  std::optional<std::uint64_t> max = std::nullopt) {
  return CgroupSwap{.path = std::move(path), .swap_bytes = swap, .current_bytes = current, .max_bytes = max};
}
}  // namespace

TEST(SwapRoomRam, TheReserveIsTwiceMinFreeOrASixteenthOfRamWhicheverIsLarger) {
  EXPECT_EQ(ram_room(16 * GiB, 64 * MiB, {}).reserve, 1 * GiB);
  EXPECT_EQ(ram_room(16 * GiB, 600 * MiB, {}).reserve, 1200 * MiB);
  EXPECT_TRUE(ram_room(16 * GiB, 0, {}).counted);
  EXPECT_EQ(ram_room(16 * GiB, 0, {}).capped, 0u);
}

// The case that kept a swap area at stop: 60 KiB on the last area, no
// other area, gigabytes of RAM free.
TEST(SwapRoomRam, EnoughRamTakesASmallAreaWithNoOtherAreaLeft) {
  const RamRoom ram = ram_room(16 * GiB, 64 * MiB, {});
  const auto v = swapoff_room({.need_bytes = 60 * 1024, .mem_available = 12 * GiB, .ram = ram});
  EXPECT_TRUE(v.fits);
  EXPECT_TRUE(v.ram_counted);
  EXPECT_EQ(v.room, 0u);
  EXPECT_EQ(v.ram, 11 * GiB);
  EXPECT_EQ(v.ram_reserve, 1 * GiB);
  // Without RAM counted, the same swapoff is refused (the old rule).
  EXPECT_FALSE(swapoff_room({.need_bytes = 60 * 1024, .mem_available = 12 * GiB}).fits);
}

TEST(SwapRoomRam, RamCountsOnlyAboveTheReserveExactlyToTheByte) {
  const RamRoom ram = ram_room(16 * GiB, 0, {});  // reserve 1 GiB
  const std::uint64_t need = 80 * MiB, margin = 10 * MiB;
  EXPECT_TRUE(swapoff_room({.need_bytes = need, .mem_available = 1 * GiB + need + margin, .ram = ram}).fits);
  EXPECT_FALSE(
      swapoff_room({.need_bytes = need, .mem_available = 1 * GiB + need + margin - 1, .ram = ram}).fits);
  // No RAM beyond the reserve: nothing counts, never below zero.
  const auto v = swapoff_room({.need_bytes = need, .mem_available = 512 * MiB, .ram = ram});
  EXPECT_FALSE(v.fits);
  EXPECT_EQ(v.ram, 0u);
}

TEST(SwapRoomRam, RamAndTheOtherAreasAddUp) {
  const RamRoom ram = ram_room(16 * GiB, 0, {});
  const auto v = swapoff_room({.need_bytes = 800 * MiB,
                               .others = {file("/swap", 500 * MiB)},
                               .mem_available = 1 * GiB + 400 * MiB,
                               .ram = ram});
  EXPECT_EQ(v.room, 500 * MiB);
  EXPECT_EQ(v.ram, 400 * MiB);
  EXPECT_TRUE(v.fits);  // 800 + 100 margin <= 900
}

// RAM enough, but the pages belong to a cgroup at its memory.max: swapoff
// would charge them to it and it cannot take them, so RAM does not help.
TEST(SwapRoomRam, PagesOfACgroupAtItsLimitNeedSwapNotRam) {
  const RamRoom ram =
      ram_room(16 * GiB, 64 * MiB, {cgroup("/sys/fs/cgroup/hog", 300 * MiB, 512 * MiB, 512 * MiB)});
  EXPECT_EQ(ram.capped, 300 * MiB);
  EXPECT_EQ(ram.capped_cgroups, 1u);
  auto v = swapoff_room({.need_bytes = 300 * MiB, .mem_available = 12 * GiB, .ram = ram});
  EXPECT_FALSE(v.fits);
  EXPECT_EQ(v.capped, 300 * MiB);
  // With a swap area below that can take them, it fits.
  v = swapoff_room(
      {.need_bytes = 300 * MiB, .others = {file("/swap", 400 * MiB)}, .mem_available = 12 * GiB, .ram = ram});
  EXPECT_TRUE(v.fits);
}

TEST(SwapRoomRam, ACgroupWithHeadroomTakesBackWhatFitsUnderItsLimit) {
  // 100 MiB of headroom under memory.max: 100 of its 300 MiB can come back.
  const RamRoom ram = ram_room(16 * GiB, 64 * MiB,
                               {cgroup("/a", 300 * MiB, 412 * MiB, 512 * MiB), cgroup("/free", 1 * GiB, 0)});
  EXPECT_EQ(ram.capped, 200 * MiB);
  EXPECT_EQ(ram.capped_cgroups, 1u);
  // A cgroup over its limit (current above max) can take nothing back.
  EXPECT_EQ(ram_room(16 * GiB, 0, {cgroup("/over", 50 * MiB, 600 * MiB, 512 * MiB)}).capped, 50 * MiB);
  // The capped part is at most what the area holds.
  const auto v = swapoff_room({.need_bytes = 64 * MiB, .mem_available = 12 * GiB, .ram = ram});
  EXPECT_EQ(v.capped, 64 * MiB);
  EXPECT_FALSE(v.fits);
}

TEST(SwapRoomRam, NoRamAndNoAreaDoesNotFit) {
  const RamRoom ram = ram_room(16 * GiB, 64 * MiB, {});
  const auto v = swapoff_room({.need_bytes = 4096, .mem_available = 0, .ram = ram});
  EXPECT_FALSE(v.fits);
  EXPECT_EQ(v.ram, 0u);
}

TEST(SwapRoomRam, NotCountedKeepsTheSwapOnlyRuleAndSaysWhy) {
  const auto v = swapoff_room({.need_bytes = 60 * 1024,
                               .mem_available = 12 * GiB,
                               .ram = ram_not_counted("no memory cgroups readable")});
  EXPECT_FALSE(v.fits);
  EXPECT_FALSE(v.ram_counted);
  EXPECT_EQ(v.ram_not_counted, "no memory cgroups readable");
}

// Zram areas draw on MemAvailable first; RAM counts what they leave.
TEST(SwapRoomRam, ZramDrawsOnFreeRamBeforeItCountsAsRam) {
  const RamRoom ram = ram_room(16 * GiB, 0, {});  // reserve 1 GiB
  const auto v = swapoff_room({.need_bytes = 100 * MiB,
                               .others = {zram("/dev/zram0", 2 * GiB, 0, 0, 0, 2.0)},
                               .mem_available = 2 * GiB,
                               .ram = ram});
  EXPECT_EQ(v.room, 2 * GiB);  // 1 GiB of RAM at ratio 2
  EXPECT_EQ(v.ram, 0u);        // the other 1 GiB is the reserve
}

// A teardown: committed bytes fill the swap areas first, then RAM.
TEST(SwapRoomRam, ASequenceSpendsRamOnlyOnceAndTheLastAreaGoesWhenRamIsThere) {
  const RamRoom ram = ram_room(16 * GiB, 0, {});  // reserve 1 GiB
  const std::vector<RoomArea> areas = {file("/low", 1 * GiB, 600 * MiB),
                                       zram("/dev/zram1", 1 * GiB, 60 * 1024, 0, 0, 1.0)};
  auto v = swapoff_sequence_room({"/low", "/dev/zram1"}, areas, 1 * GiB + 700 * MiB, ram);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_TRUE(v[0].fits);
  EXPECT_TRUE(v[1].fits) << "the last area's 60 KiB fit in RAM";
  // With RAM for the first one only, the second does not fit.
  v = swapoff_sequence_room({"/low", "/dev/zram1"}, areas, 1 * GiB + 602 * MiB, ram);
  EXPECT_TRUE(v[0].fits);
  EXPECT_FALSE(v[1].fits);
  EXPECT_EQ(v[1].committed, 600 * MiB);
}
