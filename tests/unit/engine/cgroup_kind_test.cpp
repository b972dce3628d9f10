// The cgroup kind on a fake cgroup v2 tree (fixture 05-cgroup-limits):
// limits applied, journalled and restored like every other value; a reload
// writes only what changed; every refusal names the file that decided it
// (no cgroup v2, the memory controller off, a limit file the kernel lacks,
// a symbolic link on the way); a cgroup that is not there is a warning.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/kernel.hpp"
#include "config/loader.hpp"
#include "daemon/engine.hpp"
#include "daemon/journal.hpp"
#include "daemon/kind_registry.hpp"
#include "daemon/plan_ops.hpp"
#include "daemon/planner.hpp"
#include "fake_root.hpp"

using namespace tierswap;
using ::testing::HasSubstr;
namespace fsys = std::filesystem;

namespace {

const std::string kCg = "sys/fs/cgroup/";

class CgroupKind : public ::testing::Test {
 protected:
  test::TempRoot root_{"05-cgroup-limits"};

  std::string file(const std::string& rel) { return test::slurp(root_.path() / (kCg + rel)); }
  void config(const std::string& yaml) { test::spit(root_.path() / "etc/tierswap.yaml", yaml); }

  // Plans etc/tierswap.yaml against the fake root: the diagnostics, one a
  // line, then the plan's text.
  std::string plan() {
    const HostFs hfs(root_.str());
    auto obs = observe(hfs);
    EXPECT_TRUE(obs) << obs.error().describe();
    auto lr = config::load_string(test::slurp(root_.path() / "etc/tierswap.yaml"), "t.yaml",
                                  config::HostFacts{.ram_bytes = obs->ram_bytes});
    std::string out;
    for (const auto& d : lr.diagnostics) out += config::format_diagnostic(d) + "\n";
    if (!lr.ok()) return out;
    auto pr = make_plan(*lr.spec, *obs, Journal{}, hfs);
    for (const auto& d : pr.diagnostics) out += config::format_diagnostic(d) + "\n";
    return out + plan_to_text(pr.plan);
  }

  std::unique_ptr<Engine> engine() {
    EngineOptions eo;
    eo.root = root_.str();
    eo.config = (root_.path() / "etc/tierswap.yaml").string();
    eo.info = eo.warn = [](const std::string&) {};
    return std::make_unique<Engine>(eo);
  }
};

}  // namespace

TEST_F(CgroupKind, AppliedJournalledReloadedAndRestored) {
  const auto before = root_.snapshot();
  auto e = engine();
  ASSERT_TRUE(e->start());
  EXPECT_EQ(file("system.slice/postgresql.service/memory.swap.max"), "0");
  EXPECT_EQ(file("system.slice/postgresql.service/memory.zswap.max"), "0");
  EXPECT_EQ(file("system.slice/memory.high"), std::to_string(12ULL << 30));
  EXPECT_EQ(file("user.slice/memory.max"), "max\n");  // already so: not written
  std::set<std::string> journalled;
  for (const auto& v : e->journal().values) journalled.insert(v.path);
  EXPECT_TRUE(journalled.contains("/sys/fs/cgroup/system.slice/postgresql.service/memory.swap.max"));
  EXPECT_TRUE(journalled.contains("/sys/fs/cgroup/system.slice/memory.high"));
  EXPECT_EQ(kinds::for_value("/sys/fs/cgroup/system.slice/memory.high").name(), "cgroup");

  // Nothing changed: nothing to do. One limit changed, one dropped: exactly
  // those two writes, the dropped one back to its original.
  auto again = e->reload();
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(*again, 0u);
  config(
      "tiers: []\nsysctl: { vm.swappiness: 100 }\n"
      "cgroups:\n  postgresql.service: { memory.swap.max: 0, memory.zswap.max: 0 }\n"
      "  system.slice: { memory.high: 10G }\n");
  auto p = e->plan();
  ASSERT_TRUE(p) << p.error().describe();
  ASSERT_EQ(p->steps.size(), 1u) << plan_to_text(*p);
  EXPECT_EQ(p->steps[0].path, "/sys/fs/cgroup/system.slice/memory.high");
  EXPECT_EQ(p->steps[0].value, std::to_string(10ULL << 30));
  config("tiers: []\nsysctl: { vm.swappiness: 100 }\ncgroups:\n  system.slice: { memory.high: 10G }\n");
  auto n = e->reload();
  ASSERT_TRUE(n) << n.error().describe();
  EXPECT_EQ(*n, 3u);  // memory.high changed; swap.max and zswap.max back to "max"
  EXPECT_EQ(file("system.slice/postgresql.service/memory.swap.max"), "max");
  EXPECT_EQ(file("system.slice/memory.high"), std::to_string(10ULL << 30));

  ASSERT_TRUE(e->stop());
  EXPECT_EQ(root_.snapshot().at(kCg + "system.slice/memory.high"), "max");
  auto after = root_.snapshot();
  for (const auto& [path, content] : before) {
    if (path.starts_with(kCg)) {
      EXPECT_EQ(after[path], content) << path;
    }
  }
}

TEST_F(CgroupKind, PlanShowsTheWritesWithTheirUndo) {
  const std::string out = plan();
  EXPECT_THAT(out, HasSubstr("write /sys/fs/cgroup/system.slice/postgresql.service/memory.swap.max = \"0\" "
                             "(was \"max\")"));
  EXPECT_THAT(out, HasSubstr("undo: write \"max\""));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("user.slice/memory.max")));
}

TEST_F(CgroupKind, CgroupV1HostIsRefused) {
  fsys::remove(root_.path() / (kCg + "cgroup.controllers"));
  const std::string out = plan();
  EXPECT_THAT(out, HasSubstr("cgroups: this host has no cgroup v2 hierarchy at /sys/fs/cgroup "
                             "(/sys/fs/cgroup/cgroup.controllers does not exist"));
  EXPECT_THAT(out, HasSubstr("systemd.unified_cgroup_hierarchy=1"));
}

TEST_F(CgroupKind, MemoryControllerOffNamesTheParentsSubtreeControl) {
  test::spit(root_.path() / (kCg + "user.slice/cgroup.controllers"), "cpu io pids\n");
  const std::string out = plan();
  EXPECT_THAT(out,
              HasSubstr("cgroups.user.slice: the memory controller is not enabled for "
                        "/sys/fs/cgroup/user.slice (/sys/fs/cgroup/cgroup.subtree_control lacks \"memory\"; "
                        "/sys/fs/cgroup/user.slice/cgroup.controllers offers: cpu io pids)"));
}

TEST_F(CgroupKind, MissingZswapMaxNamesTheFile) {
  fsys::remove(root_.path() / (kCg + "system.slice/postgresql.service/memory.zswap.max"));
  const std::string out = plan();
  EXPECT_THAT(out, HasSubstr("cgroups.postgresql.service.memory.zswap.max: this kernel has no "
                             "/sys/fs/cgroup/system.slice/postgresql.service/memory.zswap.max: zswap limits "
                             "per cgroup need Linux 5.19"));
  // The location is the key's line in the file.
  EXPECT_THAT(out, HasSubstr("t.yaml:9:"));
}

TEST_F(CgroupKind, SymlinkOnTheWayIsRefused) {
  const auto real = root_.path() / (kCg + "system.slice");
  fsys::rename(real, root_.path() / "elsewhere");
  fsys::create_directory_symlink(root_.path() / "elsewhere", real);
  const std::string out = plan();
  EXPECT_THAT(out,
              HasSubstr("/sys/fs/cgroup/system.slice is a symbolic link; tierswap does not follow links"));
}

TEST_F(CgroupKind, MissingCgroupIsAWarningAndGetsNoStep) {
  fsys::remove_all(root_.path() / (kCg + "system.slice/postgresql.service"));
  const std::string out = plan();
  EXPECT_THAT(out, HasSubstr("warning"));
  EXPECT_THAT(out, HasSubstr("cgroups.postgresql.service: not applied: "
                             "/sys/fs/cgroup/system.slice/postgresql.service does not exist"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("postgresql.service/memory")));
  EXPECT_THAT(out, HasSubstr("system.slice/memory.high"));
}

// A restore whose cgroup went away with its unit has nothing to do and
// does not fail the teardown.
TEST_F(CgroupKind, TeardownAfterTheCgroupIsGoneSucceeds) {
  auto e = engine();
  ASSERT_TRUE(e->start());
  fsys::remove_all(root_.path() / (kCg + "system.slice/postgresql.service"));
  auto r = e->stop();
  EXPECT_TRUE(r) << r.error().describe();
  EXPECT_EQ(file("system.slice/memory.high"), "max");
}

TEST_F(CgroupKind, ProbeNamesCgroupControllers) {
  const HostFs hfs(root_.str());
  const auto caps = kinds::named("cgroup")->probe(hfs);
  ASSERT_EQ(caps.size(), 2u);
  EXPECT_TRUE(caps[0].offered);
  EXPECT_TRUE(caps[1].offered);
  EXPECT_EQ(caps[1].evidence, "/sys/fs/cgroup/cgroup.controllers");
  test::spit(root_.path() / (kCg + "cgroup.controllers"), "cpu io\n");
  EXPECT_FALSE(kinds::named("cgroup")->probe(hfs)[1].offered);
}

// The journal accepts exactly the limit files the kind writes, so a limit
// set before a restart is still restored after it; a damaged journal
// naming anything else below /sys/fs/cgroup is refused.
TEST_F(CgroupKind, JournalKeepsLimitsAcrossARestart) {
  auto with = [](std::string path) {
    Journal j;
    j.values.push_back({std::move(path), "max", "0"});
    return validate_journal(j);
  };
  EXPECT_TRUE(with("/sys/fs/cgroup/system.slice/postgresql.service/memory.swap.max"));
  EXPECT_TRUE(with("/sys/fs/cgroup/database.slice/memory.zswap.max"));
  for (const char* bad : {"/sys/fs/cgroup/system.slice/../../../etc/shadow/memory.max",
                          "/sys/fs/cgroup/system.slice/cgroup.procs", "/sys/fs/cgroup/memory.max",
                          "/sys/fs/cgroup/system.slice/memory.min", "/proc/sys/kernel/core_pattern"}) {
    auto r = with(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(r.error().message, HasSubstr("is not a value tierswap changes")) << bad;
  }

  const auto before = root_.snapshot();
  {
    auto e = engine();
    ASSERT_TRUE(e->start());
  }  // gone without teardown, as after a crash
  EXPECT_EQ(file("system.slice/postgresql.service/memory.swap.max"), "0");
  auto e = engine();
  ASSERT_TRUE(e->start());
  for (const auto& entry : fsys::directory_iterator(root_.path() / "run/tierswap"))
    EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr("invalid")))
        << "journal set aside";
  ASSERT_TRUE(e->stop());
  auto after = root_.snapshot();
  for (const auto& [path, content] : before) {
    if (path.starts_with(kCg)) {
      EXPECT_EQ(after[path], content) << path;
    }
  }
}
