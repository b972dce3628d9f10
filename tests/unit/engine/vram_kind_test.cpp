// The vram tier kind on a fake root: its config keys, planning when the nbd
// driver (or the GPU) is missing and when it is there, teardown order and the
// journal's new fields. Nothing here starts an exporter or attaches a device
// (that is the vm label's job).
#include "backends/vram/vram_kind.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "backends/hostfs/paths.hpp"
#include "daemon/kind_registry.hpp"
#include "daemon/plan_ops.hpp"
#include "vram_fixture.hpp"

using namespace tierswap;
namespace fsys = std::filesystem;

namespace {

using test::dump;
constexpr const char* kConfig = test::kVramConfig;

config::LoadResult load(const std::string& yaml) {
  return test::load_config(yaml);
}

class VramPlan : public ::testing::Test {
 protected:
  void SetUp() override { root_ = std::make_unique<test::TempRoot>("02-zram-file-zswap"); }
  PlanResult plan(const std::string& yaml, const Journal& j = {}) { return test::plan_on(*root_, yaml, j); }
  void add_nbd_driver() { fsys::create_directories(root_->path() / "sys/module/nbd"); }
  static std::vector<std::string> ops_of(const Plan& p, const std::string& tier) {
    std::vector<std::string> out;
    for (const auto& s : p.steps)
      if (s.tier == tier) out.push_back(s.op);
    return out;
  }
  std::unique_ptr<test::TempRoot> root_;
};

}  // namespace

TEST(VramConfig, StoreAndConnectionsAreReadWithDefaults) {
  auto l = load(kConfig);
  ASSERT_TRUE(l.spec) << dump(l.diagnostics);
  EXPECT_EQ(l.spec->tiers[1].store, "host");
  EXPECT_EQ(l.spec->tiers[1].connections, 2);
  auto d = load("tiers:\n  - name: gpu\n    kind: vram\n    size: 1G\n");
  ASSERT_TRUE(d.spec) << dump(d.diagnostics);
  EXPECT_EQ(d.spec->tiers[0].store, "cuda");
  EXPECT_EQ(d.spec->tiers[0].connections, 0);  // one per CPU, decided by the plug-in
  EXPECT_EQ(vram::default_connections(0), 1);
  EXPECT_EQ(vram::default_connections(4), 4);
  EXPECT_EQ(vram::default_connections(64), 16);
}

TEST(VramConfig, BadStoreOrConnectionsNameTheKey) {
  auto l = load("tiers:\n  - name: gpu\n    kind: vram\n    size: 1G\n    store: disk\n");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(dump(l.diagnostics).find("test.yaml:5:12: tiers[0].store: unknown store \"disk\""),
            std::string::npos)
      << dump(l.diagnostics);
  l = load("tiers:\n  - name: gpu\n    kind: vram\n    size: 1G\n    connections: 17\n");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(dump(l.diagnostics).find("tiers[0].connections"), std::string::npos) << dump(l.diagnostics);
  l = load("tiers:\n  - name: fast\n    kind: zram\n    size: 1G\n    store: host\n");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(dump(l.diagnostics).find("tiers[0].store: \"store\" does not apply to a zram tier"),
            std::string::npos)
      << dump(l.diagnostics);
}

TEST_F(VramPlan, WithoutTheNbdDriverTheTierIsUnavailableAndTheOthersStillApply) {
  ASSERT_FALSE(fsys::exists(root_->path() / "sys/module/nbd"));
  auto r = plan(kConfig);
  EXPECT_TRUE(r.ok()) << dump(r.diagnostics);  // a warning, not an error
  bool warned = false;
  for (const auto& d : r.diagnostics)
    warned = warned || (d.severity == config::Severity::warning && d.path == "tiers[1].kind" &&
                        d.message.find("no nbd driver (CONFIG_BLK_DEV_NBD)") != std::string::npos &&
                        d.message.find(paths::sys_module_nbd) != std::string::npos);
  EXPECT_TRUE(warned) << dump(r.diagnostics);
  EXPECT_TRUE(ops_of(r.plan, "gpu").empty());
  EXPECT_NE(
      std::find(r.plan.notes.begin(), r.plan.notes.end(),
                "tier \"gpu\": unavailable (this kernel has no nbd driver (CONFIG_BLK_DEV_NBD): neither "
                "/sys/module/nbd nor /sys/block/nbd0 exists)"),
      r.plan.notes.end());
  const auto fast = ops_of(r.plan, "fast");
  EXPECT_NE(std::find(fast.begin(), fast.end(), "swapon"), fast.end());
}

TEST_F(VramPlan, StoreCudaWithoutAGpuIsUnavailable) {
  add_nbd_driver();
  std::string cfg = kConfig;
  cfg.replace(cfg.find("store: host"), 11, "store: cuda");
  auto r = plan(cfg);
  EXPECT_TRUE(r.ok()) << dump(r.diagnostics);
  EXPECT_NE(dump(r.diagnostics).find("tiers[1].store: vram tier unavailable: no NVIDIA GPU"),
            std::string::npos)
      << dump(r.diagnostics);
  EXPECT_TRUE(ops_of(r.plan, "gpu").empty());
}

TEST_F(VramPlan, WithTheDriverTheFourStepsComeInOrder) {
  add_nbd_driver();
  auto r = plan(kConfig);
  ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
  EXPECT_EQ(ops_of(r.plan, "gpu"),
            (std::vector<std::string>{"start_exporter", "nbd_attach", "swap_header", "swapon"}));
  std::vector<const Step*> gpu;
  for (const auto& s : r.plan.steps)
    if (s.tier == "gpu") gpu.push_back(&s);
  ASSERT_EQ(gpu.size(), 4u);
  EXPECT_EQ(gpu[0]->kind, "vram");
  EXPECT_EQ(gpu[0]->value, "store=host connections=2");
  EXPECT_EQ(gpu[0]->size, 64ULL << 20);
  EXPECT_EQ(gpu[1]->path, "{vram:gpu:exporter}");
  EXPECT_EQ(gpu[2]->path, "/dev/{vram:gpu}");
  EXPECT_EQ(gpu[3]->path, "/dev/{vram:gpu}");
  EXPECT_EQ(gpu[3]->priority, 50);
  // The zram tier (priority 100) is planned first.
  EXPECT_EQ(r.plan.steps.front().tier, "fast");
  // Each step's undo: the exporter is stopped, the device disconnected.
  EXPECT_EQ(undo_of(*gpu[1])->op, "nbd_detach");
  EXPECT_EQ(undo_of(*gpu[3])->op, "swapoff");
  EXPECT_EQ(describe(*gpu[0]),
            "start tierswap-nbd store=host connections=2 size=67108864 -> "
            "{vram:gpu:exporter}");
}

TEST_F(VramPlan, AnOwnedActiveTierIsKeptAndADroppedOneTornDownInOrder) {
  add_nbd_driver();
  test::spit(root_->path() / "proc/swaps",
             "Filename\tType\tSize\tUsed\tPriority\n/dev/nbd0\tpartition\t65532\t0\t50\n");
  Journal j;
  OwnedTier t;
  t.name = "gpu";
  t.kind = "vram";
  t.device = "nbd0";
  t.swap_path = "/dev/nbd0";
  t.active = true;
  t.priority = 50;
  t.size = 64ULL << 20;
  t.store = "host";
  t.exporter_pid = 4242;
  t.exporter_start = 777;
  j.tiers.push_back(t);
  auto r = plan(kConfig, j);
  ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
  EXPECT_TRUE(ops_of(r.plan, "gpu").empty()) << plan_to_text(r.plan);

  // Dropped from the config: swapoff, disconnect, then the exporter.
  r = plan("tiers:\n  - name: fast\n    kind: zram\n    size: 1G\n", j);
  ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
  std::vector<std::string> got;
  for (const auto& s : r.plan.steps)
    if (s.tier == "gpu") got.push_back(s.op + " " + s.path);
  EXPECT_EQ(got,
            (std::vector<std::string>{"swapoff /dev/nbd0", "nbd_detach nbd0", "stop_exporter 4242:777"}));
}

TEST(VramTeardown, ReleasesBeforeEveryDestroyAndRecordsKeepTheExporter) {
  Journal j;
  OwnedTier z;
  z.name = "fast";
  z.kind = "zram";
  z.device = "zram1";
  z.swap_path = "/dev/zram1";
  z.created_device = true;
  z.active = true;
  z.priority = 100;
  OwnedTier v;
  v.name = "gpu";
  v.kind = "vram";
  v.device = "nbd0";
  v.swap_path = "/dev/nbd0";
  v.active = true;
  v.priority = 50;
  v.exporter_pid = 4242;
  v.exporter_start = 777;
  v.store = "host";
  j.tiers = {z, v};
  Observed obs;
  obs.swaps = {{.path = "/dev/zram1", .type = "partition", .priority = 100},
               {.path = "/dev/nbd0", .type = "partition", .priority = 50}};
  const Plan p = make_teardown(j, obs);
  std::vector<std::string> got;
  for (const auto& s : p.steps) got.push_back(s.op + " " + s.path);
  EXPECT_EQ(got, (std::vector<std::string>{"swapoff /dev/nbd0", "swapoff /dev/zram1", "nbd_detach nbd0",
                                           "stop_exporter 4242:777", "zram_remove zram1"}));

  // A swapoff (a Demote) leaves the tier, its device and exporter in the
  // journal; the disconnect forgets it.
  record(j, p.steps[0]);
  ASSERT_EQ(j.tiers.size(), 2u);
  EXPECT_FALSE(j.tiers[1].active);
  EXPECT_EQ(j.tiers[1].exporter_pid, 4242);
  record(j, p.steps[2]);
  ASSERT_EQ(j.tiers.size(), 1u);
  EXPECT_EQ(j.tiers[0].name, "fast");
}

TEST(VramJournal, ExporterFieldsRoundTripAndAreValidated) {
  Journal j;
  OwnedTier v;
  v.name = "gpu";
  v.kind = "vram";
  v.device = "nbd0";
  v.swap_path = "/dev/nbd0";
  v.exporter_pid = 4242;
  v.exporter_start = 777;
  v.store = "host";
  j.tiers = {v};
  auto back = parse_journal(to_json(j));
  ASSERT_TRUE(back);
  ASSERT_EQ(back->tiers.size(), 1u);
  EXPECT_EQ(back->tiers[0].exporter_pid, 4242);
  EXPECT_EQ(back->tiers[0].exporter_start, 777u);
  EXPECT_EQ(back->tiers[0].store, "host");
  EXPECT_TRUE(validate_journal(*back));

  auto bad = *back;
  bad.tiers[0].store = "disk";
  auto r = validate_journal(bad);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("tiers[0].store"), std::string::npos) << r.error().message;
  bad = *back;
  bad.tiers[0].kind = "zram";
  bad.tiers[0].device = "zram0";
  bad.tiers[0].swap_path = "/dev/zram0";
  bad.tiers[0].store.clear();
  r = validate_journal(bad);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("tiers[0].exporter_pid"), std::string::npos) << r.error().message;
}

// --- the spill store and the control socket --------------------------------

namespace {

OwnedTier spilled_gpu(const std::string& spill) {
  OwnedTier t;
  t.name = "gpu";
  t.kind = "vram";
  t.device = "nbd0";
  t.swap_path = "/dev/nbd0";
  t.active = true;
  t.priority = 50;
  t.size = 64ULL << 20;
  t.store = "host";
  t.exporter_pid = 4242;
  t.exporter_start = 777;
  t.spill = spill;
  t.control_socket = "/run/tierswap/exporter-gpu/control";
  return t;
}

}  // namespace

// A new tier: the spill goes to the exporter and, through the attach step,
// into the journal with the control socket the exporter makes.
TEST_F(VramPlan, TheSpillAndTheControlSocketReachTheExporterAndTheJournal) {
  add_nbd_driver();
  auto r = plan(std::string(kConfig) + "    spill: {kind: lz4}\n");
  ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
  std::vector<Step> gpu;
  for (const auto& s : r.plan.steps)
    if (s.tier == "gpu") gpu.push_back(s);
  ASSERT_EQ(gpu.size(), 4u);
  EXPECT_EQ(gpu[0].value, "store=host connections=2 spill=lz4");
  EXPECT_EQ(gpu[1].previous, "host spill=lz4");
  std::vector<OwnedTier> tiers;
  std::vector<ValueRecord> values;
  Ownership own{tiers, values};
  Step attach = gpu[1];
  attach.path = "4242:777";
  attach.value = "nbd0";
  kinds::named("vram")->record(own, attach);
  ASSERT_EQ(tiers.size(), 1u);
  EXPECT_EQ(tiers[0].store, "host");
  EXPECT_EQ(tiers[0].spill, "lz4");
  EXPECT_EQ(tiers[0].control_socket, "/run/tierswap/exporter-gpu/control");
  // The daemon's channel to it: only for a sound tier with a socket.
  const HostFs fs(root_->str());
  EXPECT_NE(kinds::named("vram")->control(tiers[0], fs), nullptr);
  tiers[0].failed = "its exporter failed";
  EXPECT_EQ(kinds::named("vram")->control(tiers[0], fs), nullptr);
  tiers[0].failed.clear();
  tiers[0].control_socket.clear();  // an exporter of an older tierswapd
  EXPECT_EQ(kinds::named("vram")->control(tiers[0], fs), nullptr);
}

// Changing spill: on a running tier restarts nothing: the plan keeps the
// tier and says the change applies at the next set-up.
TEST_F(VramPlan, ChangingTheSpillOfARunningTierIsANoteNotARestart) {
  add_nbd_driver();
  test::spit(root_->path() / "proc/swaps",
             "Filename\tType\tSize\tUsed\tPriority\n/dev/nbd0\tpartition\t65532\t0\t50\n");
  Journal j;
  j.tiers = {spilled_gpu("lz4")};
  auto r = plan(std::string(kConfig) + "    spill: {kind: file, path: /var/lib/tierswap/spill-gpu}\n", j);
  ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
  EXPECT_TRUE(ops_of(r.plan, "gpu").empty()) << plan_to_text(r.plan);
  const std::string text = plan_to_text(r.plan);
  EXPECT_NE(text.find("tier \"gpu\": spill lz4 -> file:/var/lib/tierswap/spill-gpu: applies when the tier is "
                      "next set up (its exporter keeps lz4 while it serves"),
            std::string::npos)
      << text;

  // Removed, while its pages are in the spill store: said too.
  j.tiers[0].evacuated = true;
  r = plan(kConfig, j);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(ops_of(r.plan, "gpu").empty());
  EXPECT_NE(plan_to_text(r.plan).find("spill lz4 -> none: applies when the tier is next set up (its exporter "
                                      "keeps lz4, which holds its pages now"),
            std::string::npos)
      << plan_to_text(r.plan);
  // Unchanged: no note.
  j.tiers[0].evacuated = false;
  r = plan(std::string(kConfig) + "    spill: {kind: lz4}\n", j);
  EXPECT_EQ(plan_to_text(r.plan).find("spill"), std::string::npos) << plan_to_text(r.plan);
}

TEST(VramJournal, SpillSocketAndEvacuatedRoundTripAndHostileOnesAreRefused) {
  Journal j;
  OwnedTier t = spilled_gpu("file:/var/lib/tierswap/spill-gpu");
  t.evacuated = true;
  j.tiers = {t};
  auto back = parse_journal(to_json(j));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->tiers[0].spill, "file:/var/lib/tierswap/spill-gpu");
  EXPECT_EQ(back->tiers[0].control_socket, "/run/tierswap/exporter-gpu/control");
  EXPECT_TRUE(back->tiers[0].evacuated);
  EXPECT_TRUE(validate_journal(*back));
  const auto refused = [&](auto change, const std::string& part) {
    Journal bad = *back;
    change(bad.tiers[0]);
    auto r = validate_journal(bad);
    if (r) return ::testing::AssertionFailure() << "accepted";
    if (r.error().message.find(part) == std::string::npos)
      return ::testing::AssertionFailure() << r.error().message << " (wanted " << part << ")";
    return ::testing::AssertionSuccess();
  };
  // The daemon connects only where tierswap puts a tier's socket.
  EXPECT_TRUE(
      refused([](OwnedTier& x) { x.control_socket = "/tmp/evil"; },
              "tiers[0].control_socket: \"/tmp/evil\" is not the control socket tierswap gives this tier "
              "(/run/tierswap/exporter-gpu/control)"));
  EXPECT_TRUE(refused([](OwnedTier& x) { x.control_socket = "/run/tierswap/exporter-other/control"; },
                      "tiers[0].control_socket"));
  EXPECT_TRUE(refused([](OwnedTier& x) { x.spill = "zstd"; }, "tiers[0].spill"));
  EXPECT_TRUE(refused([](OwnedTier& x) { x.spill = "file:relative"; }, "tiers[0].spill"));
  EXPECT_TRUE(refused(
      [](OwnedTier& x) {
        x.spill.clear();
        x.evacuated = true;
      },
      "tiers[0].evacuated"));
}
