// The tier-kind registry and the plug-in contract: every step goes to the
// plug-in named by Step::kind, capabilities name the file that decided them,
// and journalled values go back to the kind that owns them.
#include <gtest/gtest.h>

#include <set>

#include "backends/hostfs/paths.hpp"
#include "daemon/apply.hpp"
#include "daemon/kind_registry.hpp"
#include "daemon/plan_ops.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"

using namespace tierswap;

TEST(Kinds, NamesAreUniqueAndConfiguredKindsMapToTheirPlugin) {
  std::set<std::string_view> names, tier_kinds;
  for (const auto* k : kinds::all()) {
    EXPECT_TRUE(names.insert(k->name()).second) << "two plug-ins named " << k->name();
    for (auto t : k->tier_kinds()) EXPECT_TRUE(tier_kinds.insert(t).second) << "two plug-ins plan " << t;
    EXPECT_EQ(kinds::named(k->name()), k);
  }
  ASSERT_NE(kinds::for_tier("zram"), nullptr);
  EXPECT_EQ(kinds::for_tier("zram")->name(), "zram");
  ASSERT_NE(kinds::for_tier("file"), nullptr);
  EXPECT_EQ(kinds::for_tier("file")->name(), "disk");
  EXPECT_EQ(kinds::for_tier("partition"), kinds::for_tier("file"));
  ASSERT_NE(kinds::for_tier("vram"), nullptr);
  EXPECT_EQ(kinds::for_tier("vram")->name(), "vram");
  EXPECT_EQ(kinds::named("no-such-kind"), nullptr);
}

TEST(Kinds, JournalledValuesGoBackToTheKindThatOwnsThem) {
  EXPECT_EQ(kinds::for_value(paths::sysctl("vm.swappiness")).name(), "sysctl");
  EXPECT_EQ(kinds::for_value(paths::zswap_param("compressor")).name(), "zswap");
  EXPECT_EQ(kinds::for_value("/sys/fs/cgroup/system.slice/memory.swap.max").name(), "cgroup");
  EXPECT_EQ(kinds::for_value("/sys/kernel/mm/something/else").name(), "value");
}

// Capabilities come from the fake root, not from this machine: removing the
// file that says "zram is here" turns the answer around.
TEST(Kinds, ProbeNamesTheFileThatSaysSo) {
  test::TempRoot root("01-desktop-default");
  const HostFs hfs(root.str());
  const auto find = [&](const TierKind& k, const std::string& name) {
    for (const auto& c : k.probe(hfs))
      if (c.name == name) return c;
    ADD_FAILURE() << k.name() << " has no capability " << name;
    return Capability{};
  };
  const auto& zram = *kinds::named("zram");
  auto c = find(zram, "zram");
  EXPECT_TRUE(c.offered);
  EXPECT_EQ(c.evidence, paths::zram_control);
  std::filesystem::remove_all(root.path() / "sys/class/zram-control");
  EXPECT_FALSE(find(zram, "zram").offered);

  const auto& sysctl = *kinds::named("sysctl");
  EXPECT_TRUE(find(sysctl, "vm.swappiness").offered);
  std::filesystem::remove(root.path() / "proc/sys/vm/swappiness");
  c = find(sysctl, "vm.swappiness");
  EXPECT_FALSE(c.offered);
  EXPECT_EQ(c.evidence, paths::sysctl("vm.swappiness"));

  const auto& zswap = *kinds::named("zswap");
  EXPECT_TRUE(find(zswap, "zswap").offered);
  std::filesystem::remove_all(root.path() / "sys/module/zswap");
  EXPECT_FALSE(find(zswap, "zswap").offered);
}

// A step no plug-in owns fails by name, and what ran before it is undone.
TEST(Kinds, StepOfAnUnregisteredKindFailsAndRollsBack) {
  test::TempRoot root("01-desktop-default");
  const HostFs hfs(root.str());
  swap::RecordingKernel k(&hfs);
  Journal j;
  Plan p;
  p.steps = {
      Step{.kind = "sysctl",
           .op = "write",
           .path = paths::sysctl("vm.swappiness"),
           .value = "99",
           .previous = "60"},
      Step{.kind = "no-such-kind", .op = "set_limit", .path = "/sys/fs/cgroup/x/memory.high", .value = "1G"}};
  Executor ex(hfs, k, j);
  auto r = ex.apply(p, ApplyOptions{.persist = false});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("step 2 of 2"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("no tier kind \"no-such-kind\" is registered"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("undid 1 step"), std::string::npos) << r.error().message;
  EXPECT_EQ(test::slurp(root.path() / "proc/sys/vm/swappiness"), "60");
  EXPECT_TRUE(j.empty());
  EXPECT_FALSE(reversible(p.steps[1]));
}

// The zram plug-in binds the device its hot_add created in later steps'
// paths, and its undo removes that device.
TEST(Kinds, ZramAddBindsThePlaceholderForLaterSteps) {
  test::TempRoot root("01-desktop-default");
  const HostFs hfs(root.str());
  swap::RecordingKernel k(&hfs);
  Journal j;
  Plan p;
  p.steps = {Step{.kind = "zram", .op = "zram_add", .tier = "t"},
             Step{.kind = "zram",
                  .op = "write",
                  .tier = "t",
                  .path = "/sys/block/{zram:t}/disksize",
                  .value = "1048576"},
             Step{.kind = "zram",
                  .op = "write",
                  .tier = "t",
                  .path = "/sys/block/{zram:t}/nonexistent",
                  .value = "1"}};
  Executor ex(hfs, k, j);
  auto r = ex.apply(p, ApplyOptions{.persist = false});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/sys/block/zram1/nonexistent"), std::string::npos) << r.error().message;
  EXPECT_EQ(k.calls(), (std::vector<std::string>{"zram_hot_add -> zram1", "zram_hot_remove zram1"}));
  EXPECT_TRUE(j.empty());
}
