// Stopping and reloading never swap off what does not fit (the room rule,
// policy/swap_room.hpp): the tier stays set up and in the journal, and the
// error says so with the numbers. Fake root (fixture 02: zram "fast" at
// priority 100, file "disk" of 64 MiB at 10) with the recording kernel.
#include <gtest/gtest.h>

#include "daemon/engine.hpp"
#include "daemon/journal.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"

using namespace tierswap;
namespace fsys = std::filesystem;

namespace {

class Teardown : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::make_unique<test::TempRoot>("02-zram-file-zswap");
    engine_ = make_engine();
    ASSERT_TRUE(engine_->start());
  }
  std::unique_ptr<Engine> make_engine() {
    EngineOptions eo;
    eo.root = root_->str();
    eo.config = (root_->path() / "etc/tierswap.yaml").string();
    eo.make_kernel = swap::recording_kernel_on;
    eo.warn = [this](const std::string& l) { warnings_.push_back(l); };
    return std::make_unique<Engine>(eo);
  }
  std::vector<std::string> calls(Engine& e) {
    return dynamic_cast<swap::RecordingKernel&>(e.kernel()).calls();
  }
  static bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  void set_used(const std::string& area, std::uint64_t kib) {
    test::set_swap_used(root_->path() / "proc/swaps", area, kib);
  }
  std::string swaps() { return test::slurp(root_->path() / "proc/swaps"); }

  std::unique_ptr<test::TempRoot> root_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::string> warnings_;
};

}  // namespace

TEST_F(Teardown, ATierWhoseSwapoffWouldNotFitStaysInTheKernelAndTheJournal) {
  set_used("/dev/zram1", 200 * 1024);
  set_used("/var/swap/tier.swap", 1024);
  auto r = engine_->stop();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::not_enough_memory);
  // Lowest priority first: the file's 1 MiB fits in the zram area; then the
  // zram area has no area left to drain into.
  EXPECT_NE(
      r.error().message.find("tier \"fast\" (/dev/zram1) stays set up and in the journal: it holds 200 MiB; "
                             "the swap areas that stay can take 0 B (0 areas, after the 1.0 MiB that "
                             "earlier swapoffs move there); RAM is not counted: "),
      std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("; its swapoff needs 225 MiB with a margin of 25 MiB"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("memory.max"), std::string::npos);
  EXPECT_NE(r.error().message.find("the next tierswapd start adopts what stays"), std::string::npos);
  EXPECT_FALSE(warnings_.empty());
  const auto c = calls(*engine_);
  EXPECT_TRUE(has(c, "swapoff /var/swap/tier.swap"));
  EXPECT_FALSE(has(c, "swapoff /dev/zram1"));
  EXPECT_FALSE(has(c, "zram_hot_remove zram1"));
  EXPECT_NE(swaps().find("/dev/zram1"), std::string::npos);
  EXPECT_TRUE(fsys::exists(root_->path() / "sys/block/zram1"));
  EXPECT_FALSE(fsys::exists(root_->path() / "var/swap/tier.swap"));
  // Values are restored; the journal keeps the tier that stays, and only it.
  EXPECT_EQ(test::slurp(root_->path() / "proc/sys/vm/swappiness"), "60");
  auto saved = load_journal(HostFs(root_->str()));
  ASSERT_TRUE(saved) << saved.error().message;
  ASSERT_EQ(saved->tiers.size(), 1u);
  EXPECT_EQ(saved->tiers[0].name, "fast");
  EXPECT_TRUE(saved->tiers[0].active);
  EXPECT_TRUE(saved->values.empty());
  EXPECT_EQ(to_json(engine_->journal()), to_json(*saved));

  // The next start (a package upgrade's restart) adopts it: no second device.
  engine_ = make_engine();
  ASSERT_TRUE(engine_->start());
  EXPECT_FALSE(has(calls(*engine_), "zram_hot_add -> zram2"));
  EXPECT_FALSE(fsys::exists(root_->path() / "sys/block/zram2"));
  ASSERT_NE(engine_->journal().find_tier("fast"), nullptr);
  // Once it holds nothing, stopping removes everything.
  test::clear_swap_used(root_->path() / "proc/swaps");
  ASSERT_TRUE(engine_->stop());
  EXPECT_FALSE(fsys::exists(root_->path() / "sys/block/zram1"));
  EXPECT_FALSE(fsys::exists(root_->path() / "run/tierswap/state.json"));
}

TEST_F(Teardown, WithRoomInAnAreaThatStaysEverythingGoes) {
  // A swap partition tierswap does not own, 4 GiB and empty: it takes both.
  test::spit(root_->path() / "proc/swaps", swaps() + "/dev/vdb\tpartition\t4194300\t0\t-2\n");
  set_used("/dev/zram1", 200 * 1024);
  set_used("/var/swap/tier.swap", 1024);
  auto r = engine_->stop();
  ASSERT_TRUE(r) << r.error().message;
  const auto c = calls(*engine_);
  EXPECT_TRUE(has(c, "swapoff /dev/zram1"));
  EXPECT_TRUE(has(c, "zram_hot_remove zram1"));
  EXPECT_NE(swaps().find("/dev/vdb"), std::string::npos);
  EXPECT_FALSE(fsys::exists(root_->path() / "run/tierswap/state.json"));
}

TEST_F(Teardown, ReloadDroppingATierWhoseSwapoffWouldNotFitIsRefused) {
  set_used("/dev/zram1", 200 * 1024);
  auto cfg = test::slurp(root_->path() / "etc/tierswap.yaml");
  const auto a = cfg.find("  - name: fast"), b = cfg.find("  - name: disk");
  test::spit(root_->path() / "etc/tierswap.yaml", cfg.substr(0, a) + cfg.substr(b));
  const auto journal_before = to_json(engine_->journal());
  const auto calls_before = calls(*engine_);
  auto r = engine_->reload();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::not_enough_memory);
  EXPECT_NE(r.error().message.find(
                "([fast] swapoff /dev/zram1): tier \"fast\" (/dev/zram1) holds 200 MiB; the swap "
                "areas that stay can take 64 MiB (1 area)"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("not applying this plan, the tier stays as it is"), std::string::npos);
  EXPECT_EQ(calls(*engine_), calls_before);
  EXPECT_EQ(to_json(engine_->journal()), journal_before);
  // Once it fits, the same reload goes through.
  set_used("/dev/zram1", 1024);
  ASSERT_TRUE(engine_->reload());
  EXPECT_TRUE(has(calls(*engine_), "swapoff /dev/zram1"));
  EXPECT_EQ(engine_->journal().find_tier("fast"), nullptr);
  ASSERT_TRUE(engine_->stop());
}

TEST_F(Teardown, PriorityChangeCountsTheAreaThePlanAddsFirst) {
  // zram "fast" re-created at another priority: the new device (1 GiB,
  // mem_limit 512 MiB) is swapped on before the old one is swapped off, so
  // its room counts: 200 MiB fit although the file has only 63 MiB free.
  set_used("/dev/zram1", 200 * 1024);
  auto cfg = test::slurp(root_->path() / "etc/tierswap.yaml");
  cfg.replace(cfg.find("priority: 100"), 13, "priority: 90");
  test::spit(root_->path() / "etc/tierswap.yaml", cfg);
  auto r = engine_->reload();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(has(calls(*engine_), "swapoff /dev/zram1"));
  test::clear_swap_used(root_->path() / "proc/swaps");
  ASSERT_TRUE(engine_->stop());
}
