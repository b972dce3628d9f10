// Re-adoption of a vram tier after a restart (TierKind::readopt through
// reconcile()) on a fake root, and the journal's format: version 2 written
// with nlohmann-json, version 1 still read, hostile values refused by name.
// The real kernel's side (a daemon killed with SIGKILL and restarted while
// pages sit on /dev/nbd0) is the vm label's vm_daemon_readopt.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "backends/swap/kernel.hpp"
#include "daemon/engine.hpp"
#include "daemon/plan_ops.hpp"
#include "daemon/planner.hpp"
#include "daemon/status_observer.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"
#include "vram_fixture.hpp"

using namespace tierswap;
namespace fsys = std::filesystem;

namespace {

constexpr const char* kConfig = test::kVramConfig;

constexpr std::uint64_t kSize = test::kGpuTierBytes;

OwnedTier gpu_tier() {
  return test::journaled_gpu_tier();
}

bool has(const std::vector<std::string>& lines, const std::string& part) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(part) != std::string::npos; });
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// A machine where tier "gpu" was set up by an earlier tierswapd: its exporter
// (pid 4242, started at 777) runs, /dev/nbd0 is connected with the tier's
// size and backend, and is a swap area holding pages.
class Readopt : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::make_unique<test::TempRoot>("02-zram-file-zswap");
    test::attach_gpu_tier(*root_);
  }
  fsys::path path(const std::string& rel) const { return root_->path() / rel; }
  void exporter(const std::string& comm, std::uint64_t start, pid_t pid = 4242) {
    test::fake_process(*root_, comm, start, pid);
  }
  // reconcile() as tierswapd's start runs it; returns its log.
  std::vector<std::string> reconcile_gpu(Journal& j) {
    const HostFs fs(root_->str());
    auto obs = observe(fs);
    EXPECT_TRUE(obs);
    return reconcile(j, *obs, fs);
  }
  std::vector<std::string> gpu_steps(const Journal& j) {
    auto r = test::plan_on(*root_, kConfig, j);
    EXPECT_TRUE(r.ok());
    std::vector<std::string> out;
    for (const auto& s : r.plan.steps)
      if (s.tier == "gpu") out.push_back(s.op + " " + s.path);
    return out;
  }
  std::unique_ptr<test::TempRoot> root_;
};

}  // namespace

TEST_F(Readopt, ALiveExporterAndAttachedDeviceAreReadoptedWithoutAStep) {
  Journal j;
  j.tiers = {gpu_tier()};
  const auto log = reconcile_gpu(j);
  ASSERT_EQ(j.tiers.size(), 1u) << joined(log);
  EXPECT_TRUE(j.tiers[0].failed.empty()) << j.tiers[0].failed;
  EXPECT_EQ(j.tiers[0].exporter_pid, 4242);
  EXPECT_TRUE(j.tiers[0].active);
  EXPECT_TRUE(has(log, "tier \"gpu\": re-adopted: tierswap-nbd pid 4242")) << joined(log);
  // Nothing to do: no swapoff, no header, no second exporter.
  EXPECT_TRUE(gpu_steps(j).empty()) << joined(gpu_steps(j));
}

TEST_F(Readopt, ADeadExporterFailsTheTierWithTheConsequencesAndItsDeviceIsCleanedUp) {
  fsys::remove_all(path("proc/4242"));
  Journal j;
  j.tiers = {gpu_tier()};
  const auto log = reconcile_gpu(j);
  ASSERT_EQ(j.tiers.size(), 1u) << joined(log);
  const auto& t = j.tiers[0];
  EXPECT_NE(t.failed.find("tierswap-nbd (pid 4242) no longer runs"), std::string::npos) << t.failed;
  EXPECT_NE(t.failed.find("pages it held are gone"), std::string::npos) << t.failed;
  EXPECT_NE(t.failed.find("I/O errors to their owners"), std::string::npos) << t.failed;
  EXPECT_TRUE(has(log, "tier \"gpu\": FAILED: its exporter failed")) << joined(log);
  EXPECT_EQ(t.exporter_pid, 0) << "a dead exporter's pid must never be signalled";
  // The dead area is swapped off as lost (no room needed, not a drain), the
  // device disconnected, and the tier set up afresh; nothing is signalled.
  const auto steps = gpu_steps(j);
  const auto lost = std::find(steps.begin(), steps.end(), "swapoff_lost /dev/nbd0");
  const auto detach = std::find(steps.begin(), steps.end(), "nbd_detach nbd0");
  EXPECT_NE(lost, steps.end()) << joined(steps);
  EXPECT_NE(detach, steps.end()) << joined(steps);
  EXPECT_LT(lost, detach) << joined(steps);
  EXPECT_EQ(std::find(steps.begin(), steps.end(), "swapoff /dev/nbd0"), steps.end()) << joined(steps);
  EXPECT_TRUE(std::none_of(steps.begin(), steps.end(), [](const std::string& s) {
    return s.starts_with("stop_exporter");
  })) << joined(steps);
  EXPECT_NE(std::find(steps.begin(), steps.end(), "start_exporter "), steps.end()) << joined(steps);
  // The failure survives a save and a load.
  auto back = parse_journal(to_json(j));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->tiers[0].failed, t.failed);
  EXPECT_TRUE(validate_journal(*back));
}

TEST_F(Readopt, AReusedPidOrAnotherProgramIsNeverTakenForTheExporter) {
  for (const auto& [comm, start] :
       std::vector<std::pair<std::string, std::uint64_t>>{{"tierswap-nbd", 778}, {"sshd", 777}}) {
    exporter(comm, start);
    Journal j;
    j.tiers = {gpu_tier()};
    const auto log = reconcile_gpu(j);
    ASSERT_EQ(j.tiers.size(), 1u);
    EXPECT_FALSE(j.tiers[0].failed.empty()) << comm << " " << start << ": " << joined(log);
    EXPECT_EQ(j.tiers[0].exporter_pid, 0) << comm << " " << start;
    const auto steps = gpu_steps(j);
    EXPECT_TRUE(std::none_of(steps.begin(), steps.end(), [](const std::string& s) {
      return s.starts_with("stop_exporter");
    })) << joined(steps);
  }
  // Without a recorded start time (a hand-made journal) it cannot be told
  // apart from a reused pid either.
  exporter("tierswap-nbd", 777);
  Journal j;
  j.tiers = {gpu_tier()};
  j.tiers[0].exporter_start = 0;
  reconcile_gpu(j);
  EXPECT_NE(j.tiers[0].failed.find("no start time"), std::string::npos) << j.tiers[0].failed;
}

TEST_F(Readopt, ADeviceThatServesAnotherBackendOrSizeIsLeftAlone) {
  for (const auto& [file, content] : std::vector<std::pair<std::string, std::string>>{
           {"sys/block/nbd0/backend", "someone-else\n"},
           {"sys/block/nbd0/size", std::to_string(kSize / 512 * 2) + "\n"}}) {
    SetUp();
    test::spit(path(file), content);
    Journal j;
    j.tiers = {gpu_tier()};
    const auto log = reconcile_gpu(j);
    EXPECT_TRUE(j.tiers.empty()) << joined(log);
    EXPECT_TRUE(has(log, "leaving /dev/nbd0 alone")) << joined(log);
    const auto steps = gpu_steps(j);
    EXPECT_TRUE(std::none_of(steps.begin(), steps.end(), [](const std::string& s) {
      return s.find("nbd0") != std::string::npos;
    })) << joined(steps);
  }
}

TEST_F(Readopt, ADisconnectedDeviceWithALiveExporterFailsAndStopsThatExporter) {
  fsys::remove(path("sys/block/nbd0/pid"));
  Journal j;
  j.tiers = {gpu_tier()};
  const auto log = reconcile_gpu(j);
  ASSERT_EQ(j.tiers.size(), 1u) << joined(log);
  EXPECT_NE(j.tiers[0].failed.find("/dev/nbd0 is no longer connected"), std::string::npos)
      << j.tiers[0].failed;
  EXPECT_EQ(j.tiers[0].exporter_pid, 4242);
  const auto steps = gpu_steps(j);
  EXPECT_NE(std::find(steps.begin(), steps.end(), "stop_exporter 4242:777"), steps.end()) << joined(steps);
}

// The engine's start as tierswapd runs it: journal loaded, tier re-adopted,
// and the kernel sees no call at all for it.
TEST_F(Readopt, ARestartedDaemonReadoptsWithoutTouchingAPage) {
  test::spit(path("etc/tierswap.yaml"),
             "tiers:\n  - name: gpu\n    kind: vram\n    size: 64M\n"
             "    store: host\n    connections: 2\n    priority: 50\n");
  Journal j;
  j.source = "/etc/tierswap.yaml";
  j.tiers = {gpu_tier()};
  ASSERT_TRUE(save_journal(HostFs(root_->str()), j));
  std::vector<std::string> log;
  EngineOptions eo;
  eo.root = root_->str();
  eo.config = path("etc/tierswap.yaml").string();
  eo.make_kernel = swap::recording_kernel_on;
  eo.info = [&](const std::string& l) { log.push_back(l); };
  eo.warn = [&](const std::string& l) { log.push_back(l); };
  Engine e(eo);
  ASSERT_TRUE(e.start()) << joined(log);
  EXPECT_TRUE(has(log, "re-adopted")) << joined(log);
  EXPECT_TRUE(dynamic_cast<swap::RecordingKernel&>(e.kernel()).calls().empty()) << joined(log);
  auto back = load_journal(HostFs(root_->str()));
  ASSERT_TRUE(back);
  ASSERT_EQ(back->tiers.size(), 1u);
  EXPECT_EQ(back->tiers[0].exporter_pid, 4242);
  EXPECT_EQ(back->version, kJournalVersion);
}

// A running daemon whose exporter dies: its status says the tier failed and
// why, with the consequences, although /dev/nbd0 is still in /proc/swaps
// (the VM's vm_daemon_dead_exporter is the kernel's side).
TEST_F(Readopt, ARunningDaemonReportsADeadExporterAsAFailedTier) {
  test::spit(path("etc/tierswap.yaml"),
             "tiers:\n  - name: gpu\n    kind: vram\n    size: 64M\n"
             "    store: host\n    connections: 2\n    priority: 50\n");
  Journal j;
  j.source = "/etc/tierswap.yaml";
  j.tiers = {gpu_tier()};
  ASSERT_TRUE(save_journal(HostFs(root_->str()), j));
  std::vector<std::string> log;
  EngineOptions eo;
  eo.root = root_->str();
  eo.config = path("etc/tierswap.yaml").string();
  eo.make_kernel = swap::recording_kernel_on;
  eo.info = [&](const std::string& l) { log.push_back(l); };
  eo.warn = [&](const std::string& l) { log.push_back(l); };
  Engine e(eo);
  ASSERT_TRUE(e.start()) << joined(log);
  StatusObserver obs(e);
  auto gpu = [&] {
    const Status s = obs.observe(Activity{}).status;
    const auto it =
        std::find_if(s.tiers.begin(), s.tiers.end(), [](const TierStatus& t) { return t.name == "gpu"; });
    EXPECT_NE(it, s.tiers.end());
    return it == s.tiers.end() ? TierStatus{} : *it;
  };
  const TierStatus alive = gpu();
  EXPECT_EQ(alive.state, TierState::active);
  EXPECT_EQ(alive.exporter_state, "running");
  EXPECT_TRUE(alive.failure.empty()) << alive.failure;

  fsys::remove_all(path("proc/4242"));  // the exporter dies; nbd0 stays a swap area
  const TierStatus dead = gpu();
  EXPECT_EQ(dead.state, TierState::failed);
  EXPECT_EQ(dead.exporter_state, "gone");
  EXPECT_NE(dead.failure.find("tierswap-nbd (pid 4242) is gone"), std::string::npos) << dead.failure;
  EXPECT_NE(dead.failure.find("the kernel returns I/O errors to their owners"), std::string::npos)
      << dead.failure;
  EXPECT_TRUE(dynamic_cast<swap::RecordingKernel&>(e.kernel()).calls().empty())
      << "status changed the machine";
}

// --- the format ---------------------------------------------------------

TEST(JournalFormat, Version2RoundTripsEveryField) {
  Journal j;
  j.source = "/etc/tierswap.yaml";
  OwnedTier t = gpu_tier();
  t.failed = "its exporter failed: \"quoted\" \\ and UTF-8 é";
  // A swap area the kernel gave an automatic (negative) priority, as
  // rebuild_from_kernel() records it.
  j.tiers = {t, OwnedTier{.name = "recovered-zram3",
                          .kind = "zram",
                          .device = "zram3",
                          .swap_path = "/dev/zram3",
                          .created_device = true,
                          .active = true,
                          .priority = -2}};
  j.values.push_back({"/proc/sys/vm/swappiness", "60", "150"});
  const std::string text = to_json(j);
  EXPECT_NE(text.find("\"version\": 2"), std::string::npos) << text;
  EXPECT_LT(text.find("\"version\""), text.find("\"source\""));  // documented key order
  auto back = parse_journal(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->version, 2);
  ASSERT_EQ(back->tiers.size(), 2u);
  EXPECT_EQ(back->tiers[1].priority, -2);
  const auto& b = back->tiers[0];
  EXPECT_EQ(b.backend, "tierswap-gpu");
  EXPECT_EQ(b.failed, t.failed);
  EXPECT_EQ(b.exporter_pid, 4242);
  EXPECT_EQ(b.exporter_start, 777u);
  EXPECT_EQ(b.size, kSize);
  EXPECT_EQ(b.priority, 50);
  ASSERT_EQ(back->values.size(), 1u);
  EXPECT_EQ(back->values[0].original, "60");
  EXPECT_TRUE(validate_journal(*back));
}

// Exactly what tierswapd before version 2 wrote (its JSON writer's output).
TEST(JournalFormat, AVersion1JournalIsStillRead) {
  const std::string v1 = R"({
  "version": 1,
  "source": "/etc/tierswap.yaml",
  "tiers": [
    {
      "name": "fast",
      "kind": "zram",
      "device": "zram1",
      "swap_path": "/dev/zram1",
      "created_device": true,
      "created_file": false,
      "active": true,
      "drained": false,
      "priority": 100,
      "discard": false,
      "algorithm": "lz4",
      "size": 8589934592,
      "mem_limit": 0
    },
    {
      "name": "gpu",
      "kind": "vram",
      "device": "nbd0",
      "swap_path": "/dev/nbd0",
      "created_device": false,
      "created_file": false,
      "active": true,
      "drained": false,
      "priority": 50,
      "discard": false,
      "algorithm": "",
      "size": 67108864,
      "mem_limit": 0,
      "exporter_pid": 4242,
      "exporter_start": 777,
      "store": "host",
      "backend": "ignored in version 1"
    }
  ],
  "values": [
    {
      "path": "/proc/sys/vm/swappiness",
      "original": "60",
      "current": "150"
    }
  ]
}
)";
  auto j = parse_journal(v1);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(j->version, 1);
  ASSERT_EQ(j->tiers.size(), 2u);
  EXPECT_EQ(j->tiers[0].size, 8589934592ULL);
  EXPECT_TRUE(j->tiers[0].created_device);
  EXPECT_EQ(j->tiers[1].exporter_pid, 4242);
  EXPECT_EQ(j->tiers[1].store, "host");
  EXPECT_TRUE(j->tiers[1].backend.empty()) << "version 1 had no backend key";
  EXPECT_EQ(j->values[0].current, "150");
  EXPECT_TRUE(validate_journal(*j));
  // Written back as version 2.
  EXPECT_NE(to_json(*j).find("\"version\": 2"), std::string::npos);
}

TEST(JournalFormat, HostileValuesAreRefusedNamingTheKey) {
  const auto refused = [](const std::string& text, const std::string& part) {
    auto j = parse_journal(text);
    if (j) return ::testing::AssertionFailure() << "accepted: " << text;
    if (j.error().code != EINVAL || j.error().message.find(part) == std::string::npos)
      return ::testing::AssertionFailure() << j.error().message << " (wanted " << part << ")";
    return ::testing::AssertionSuccess();
  };
  const std::string head = R"({"version": 2, "tiers": [{"name": "gpu", "kind": "vram", )";
  EXPECT_TRUE(refused(head + R"("exporter_pid": "4242"}]})", "tiers[0].exporter_pid: is not an integer"));
  EXPECT_TRUE(refused(head + R"("exporter_pid": 1099511627776}]})", "tiers[0].exporter_pid: 1099511627776"));
  EXPECT_TRUE(refused(head + R"("exporter_pid": -5}]})", "tiers[0].exporter_pid"));
  EXPECT_TRUE(refused(head + R"("size": -1}]})", "tiers[0].size"));
  EXPECT_TRUE(refused(head + R"("active": "yes"}]})", "tiers[0].active"));
  EXPECT_TRUE(refused(head + R"("device": ["nbd0"]}]})", "tiers[0].device"));
  EXPECT_TRUE(refused(R"({"version": 3})", "version 3"));
  EXPECT_TRUE(refused(R"({"version": 2, "tiers": {"name": "x"}})", "tiers: not a JSON array"));
  EXPECT_TRUE(refused(R"({"version": 2, "tiers": [1]})", "tiers[0]: not a JSON object"));
  EXPECT_TRUE(refused(R"({"version": 2, "tiers": [)", "not valid JSON"));
  EXPECT_TRUE(refused(R"([1, 2])", "not a JSON object"));

  // Parsed, but not what tierswapd writes.
  Journal j;
  j.tiers = {gpu_tier()};
  const auto invalid = [&](const std::string& part) {
    auto r = validate_journal(j);
    j.tiers = {gpu_tier()};
    if (r) return ::testing::AssertionFailure() << "valid";
    if (r.error().message.find(part) == std::string::npos)
      return ::testing::AssertionFailure() << r.error().message << " (wanted " << part << ")";
    return ::testing::AssertionSuccess();
  };
  j.tiers[0].device = "nbd0/../sda";
  EXPECT_TRUE(invalid("tiers[0].device"));
  j.tiers[0].device = "loop0";
  EXPECT_TRUE(invalid("tiers[0].device"));
  j.tiers[0].backend = "tierswap-other";
  EXPECT_TRUE(invalid("tiers[0].backend"));
  j.tiers[0].exporter_pid = kMaxPid + 1;
  EXPECT_TRUE(invalid("tiers[0].exporter_pid"));
  j.tiers[0].failed = "line\nbreak";
  EXPECT_TRUE(invalid("tiers[0].failed"));
  j.tiers[0].name = "g\x1bpu";
  j.tiers[0].backend.clear();
  EXPECT_TRUE(invalid("tiers[0].name"));
}
