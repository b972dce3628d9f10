// The apply engine with the recording kernel: rollback on a kernel error,
// error messages, journal contents, reconcile.
#include "daemon/apply.hpp"

#include <gtest/gtest.h>

#include "daemon/journal.hpp"
#include "daemon/observe.hpp"
#include "daemon/plan_ops.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"

using namespace tierswap;

namespace {
Plan zram_plan() {
  Plan p;
  p.source = "test";
  p.steps = {
      Step{.kind = "sysctl",
           .op = "write",
           .path = "/proc/sys/vm/swappiness",
           .value = "150",
           .previous = "60"},
      Step{.kind = "zram", .op = "zram_add", .tier = "fast"},
      Step{.kind = "zram",
           .op = "write",
           .tier = "fast",
           .path = "/sys/block/{zram:fast}/comp_algorithm",
           .value = "lz4",
           .hint = "this kernel offers: lzo-rle lzo lz4"},
      Step{.kind = "zram",
           .op = "write",
           .tier = "fast",
           .path = "/sys/block/{zram:fast}/disksize",
           .value = "1073741824"},
      Step{.kind = "zram",
           .op = "swap_header",
           .tier = "fast",
           .path = "/dev/{zram:fast}",
           .size = 1073741824},
      Step{.kind = "zram",
           .op = "swapon",
           .tier = "fast",
           .path = "/dev/{zram:fast}",
           .value = "zram",
           .priority = 100},
  };
  return p;
}
// Field by field, so that a field the serializer drops or the parser
// ignores shows up (comparing to_json() with itself would not).
void expect_same_journal(const Journal& got, const Journal& want) {
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.source, want.source);
  ASSERT_EQ(got.tiers.size(), want.tiers.size());
  for (size_t i = 0; i < want.tiers.size(); ++i) {
    SCOPED_TRACE("tiers[" + std::to_string(i) + "]");
    const auto &g = got.tiers[i], &w = want.tiers[i];
    EXPECT_EQ(g.name, w.name);
    EXPECT_EQ(g.kind, w.kind);
    EXPECT_EQ(g.device, w.device);
    EXPECT_EQ(g.swap_path, w.swap_path);
    EXPECT_EQ(g.created_device, w.created_device);
    EXPECT_EQ(g.created_file, w.created_file);
    EXPECT_EQ(g.active, w.active);
    EXPECT_EQ(g.drained, w.drained);
    EXPECT_EQ(g.priority, w.priority);
    EXPECT_EQ(g.discard, w.discard);
    EXPECT_EQ(g.algorithm, w.algorithm);
    EXPECT_EQ(g.size, w.size);
    EXPECT_EQ(g.mem_limit, w.mem_limit);
  }
  ASSERT_EQ(got.values.size(), want.values.size());
  for (size_t i = 0; i < want.values.size(); ++i) {
    SCOPED_TRACE("values[" + std::to_string(i) + "]");
    EXPECT_EQ(got.values[i].path, want.values[i].path);
    EXPECT_EQ(got.values[i].original, want.values[i].original);
    EXPECT_EQ(got.values[i].current, want.values[i].current);
  }
}
}  // namespace

TEST(Apply, RecordsCallsAndJournal) {
  test::TempRoot root("01-desktop-default");
  const HostFs hfs(root.str());
  swap::RecordingKernel k(&hfs);
  Journal j;
  Executor ex(hfs, k, j);
  ASSERT_TRUE(ex.apply(zram_plan()));
  EXPECT_EQ(k.calls(),
            (std::vector<std::string>{"zram_hot_add -> zram1", "swapon /dev/zram1 prio=100 discard=0"}));
  EXPECT_EQ(test::slurp(root.path() / "sys/block/zram1/comp_algorithm"), "lz4");
  EXPECT_EQ(test::slurp(root.path() / "proc/sys/vm/swappiness"), "150");
  ASSERT_EQ(j.tiers.size(), 1u);
  EXPECT_EQ(j.tiers[0].device, "zram1");
  EXPECT_EQ(j.tiers[0].algorithm, "lz4");
  EXPECT_EQ(j.tiers[0].size, 1073741824u);
  EXPECT_TRUE(j.tiers[0].active);
  EXPECT_EQ(j.tiers[0].priority, 100);
  ASSERT_EQ(j.values.size(), 1u);
  EXPECT_EQ(j.values[0].original, "60");
  auto saved = load_journal(hfs);
  ASSERT_TRUE(saved);
  expect_same_journal(*saved, j);
}

TEST(Apply, KernelErrorRollsBackInReverseAndSaysWhy) {
  test::TempRoot root("01-desktop-default");
  const auto before = root.snapshot();
  const HostFs hfs(root.str());
  swap::RecordingKernel k(&hfs);
  k.fail_when("swapon", EINVAL);
  Journal j;
  Executor ex(hfs, k, j);
  auto r = ex.apply(zram_plan());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(
      r.error().message.find("step 6 of 6 ([fast] swapon /dev/zram1 (priority 100)): swapon /dev/zram1"),
      std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("Invalid argument"), std::string::npos);
  EXPECT_NE(r.error().message.find("undid 2 steps"), std::string::npos) << r.error().message;
  EXPECT_EQ(k.calls().back(), "zram_hot_remove zram1");
  EXPECT_TRUE(j.empty());
  auto after = root.snapshot();
  after.erase("run/tierswap");
  after.erase("run");
  EXPECT_EQ(before, after);
}

TEST(Apply, SysfsErrorNamesPathValueAnswerAndOffer) {
  test::TempRoot root("01-desktop-default");
  const HostFs hfs(root.str());
  swap::RecordingKernel k(&hfs);
  Journal j;
  Executor ex(hfs, k, j);
  Plan p;
  p.steps = {Step{.kind = "zswap",
                  .op = "write",
                  .path = "/sys/module/zswap/parameters/nonexistent",
                  .value = "lz4",
                  .previous = "lzo",
                  .hint = "this kernel offers: lzo"}};
  auto r = ex.apply(p);
  ASSERT_FALSE(r);
  EXPECT_NE(
      r.error().message.find("/sys/module/zswap/parameters/nonexistent: \"lz4\": No such file or directory "
                             "(this kernel offers: lzo)"),
      std::string::npos)
      << r.error().message;
}

TEST(Apply, BestEffortKeepsGoing) {
  test::TempRoot root("01-desktop-default");
  const HostFs hfs(root.str());
  swap::RecordingKernel k(&hfs);
  k.fail_when("swapoff", EBUSY);
  Journal j;
  Plan p;
  p.steps = {Step{.kind = "zram", .op = "swapoff", .path = "/dev/zram9"},
             Step{.kind = "sysctl",
                  .op = "write",
                  .path = "/proc/sys/vm/swappiness",
                  .value = "61",
                  .previous = "60"}};
  Executor ex(hfs, k, j);
  auto r = ex.apply(p, ApplyOptions{.best_effort = true, .persist = false});
  EXPECT_FALSE(r);
  EXPECT_EQ(test::slurp(root.path() / "proc/sys/vm/swappiness"), "61");
}

TEST(Journal, RoundTrip) {
  Journal j;
  j.source = "/etc/tierswap.yaml";
  // Every field differs from its default, so that a lost one is seen.
  j.tiers.push_back(OwnedTier{.name = "fast",
                              .kind = "zram",
                              .device = "zram1",
                              .swap_path = "/dev/zram1",
                              .created_device = true,
                              .active = true,
                              .drained = true,
                              .priority = 100,
                              .algorithm = "lz4",
                              .size = 1ull << 33,
                              .mem_limit = 4096});
  j.tiers.push_back(OwnedTier{.name = "disk \"x\"",
                              .kind = "file",
                              .swap_path = "/var/swap/a b.swap",
                              .created_file = true,
                              .active = true,
                              .priority = -1,
                              .discard = true,
                              .size = 1 << 26});
  j.values.push_back({"/proc/sys/vm/swappiness", "60", "150"});
  auto back = parse_journal(to_json(j));
  ASSERT_TRUE(back) << back.error().describe();
  expect_same_journal(*back, j);
}

TEST(Journal, RejectsOtherVersionsAndGarbage) {
  EXPECT_FALSE(parse_journal("{\"version\": 3}"));  // 1 and 2 are read
  EXPECT_FALSE(parse_journal("[1, 2"));
  EXPECT_FALSE(parse_journal("42"));
}

TEST(Journal, AtomicSaveAndEmptyRemoves) {
  test::TempRoot root;
  const HostFs hfs(root.str());
  Journal j;
  j.values.push_back({"/proc/sys/vm/swappiness", "60", "150"});
  ASSERT_TRUE(save_journal(hfs, j));
  EXPECT_TRUE(std::filesystem::exists(root.path() / "run/tierswap/state.json"));
  EXPECT_FALSE(std::filesystem::exists(root.path() / "run/tierswap/state.json.tmp"));
  ASSERT_TRUE(save_journal(hfs, Journal{}));
  EXPECT_FALSE(std::filesystem::exists(root.path() / "run/tierswap/state.json"));
  auto empty = load_journal(hfs);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(Journal, ReconcileAdoptsWhatIsThereAndForgetsWhatIsGone) {
  test::TempRoot root("04-adopt-and-drop");
  const HostFs hfs(root.str());
  std::filesystem::remove_all(root.path() / "sys/block/zram2");  // gone behind our back
  test::spit(root.path() / "proc/swaps",
             "Filename Type Size Used Priority\n");  // zram1 swapped off by someone
  auto j = load_journal(hfs);
  ASSERT_TRUE(j);
  auto obs = observe(hfs);
  ASSERT_TRUE(obs);
  const auto log = reconcile(*j, *obs, hfs);
  ASSERT_EQ(j->tiers.size(), 1u);
  EXPECT_EQ(j->tiers[0].device, "zram1");
  EXPECT_FALSE(j->tiers[0].active);
  EXPECT_EQ(j->values.size(), 2u);
  EXPECT_GE(log.size(), 2u);
}
