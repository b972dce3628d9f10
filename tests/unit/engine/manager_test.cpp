// The Manager (what D-Bus forwards to) on a fake root with the recording
// kernel: status fields, the demote precheck, demote/promote and the journal,
// unknown tiers, one operation at a time.
#include "daemon/manager.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <regex>

#include "daemon/journal.hpp"
#include "engine_fixture.hpp"

using namespace tierswap;
using namespace std::chrono_literals;

namespace {

using test::Events;

void set_used(const test::TempRoot& root, const std::string& path, std::uint64_t kib) {
  test::set_swap_used(root.path() / "proc/swaps", path, kib);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class ManagerTest : public test::EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (HasFatalFailure()) return;
    ManagerOptions mo;
    mo.version = "9.9";
    mo.poll_interval = 10ms;
    mo.now = [this] { return now_; };
    manager_ = std::make_unique<Manager>(*engine_, mo);
    manager_->set_state("running");
    manager_->set_events(events_.make());
  }
  void drop() override { manager_.reset(); }
  std::vector<std::string> calls() { return kernel_->rec().calls(); }
  const TierStatus* tier(const Status& s, const std::string& name) {
    for (const auto& t : s.tiers)
      if (t.name == name) return &t;
    return nullptr;
  }

  std::unique_ptr<Manager> manager_;
  Events events_;
  std::chrono::steady_clock::time_point now_{std::chrono::seconds(1000)};
};

TEST_F(ManagerTest, StatusFromFakeProcSwapsMmStatPsiMeminfoVmstat) {
  set_used(*root_, "/dev/zram1", 2048);
  set_used(*root_, "/var/swap/tier.swap", 1024);
  test::spit(root_->path() / "sys/block/zram1/mm_stat", "8388608 2097152 3145728 0 3145728 10 0 0 0\n");
  test::spit(
      root_->path() / "proc/pressure/memory",
      "some avg10=1.50 avg60=0.75 avg300=0.25 total=1234\nfull avg10=0.50 avg60=0.10 avg300=0.00 total=99\n");
  test::spit(
      root_->path() / "proc/pressure/io",
      "some avg10=3.00 avg60=2.00 avg300=1.00 total=5\nfull avg10=2.00 avg60=1.00 avg300=0.50 total=4\n");
  test::spit(root_->path() / "proc/vmstat", "nr_free_pages 1\npswpin 100\npswpout 200\n");
  auto s = manager_->status();
  test::spit(root_->path() / "proc/vmstat", "nr_free_pages 1\npswpin 300\npswpout 1200\n");
  now_ += 2s;
  s = manager_->status();

  EXPECT_EQ(s.version, "9.9");
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.swappiness, 100);
  ASSERT_EQ(s.tiers.size(), 2u);
  EXPECT_EQ(s.tiers[0].name, "fast");  // priority order, highest first
  EXPECT_EQ(s.tiers[1].name, "disk");
  const auto& fast = s.tiers[0];
  EXPECT_EQ(fast.kind, "zram");
  EXPECT_EQ(fast.device, "/dev/zram1");
  EXPECT_EQ(fast.priority, 100);
  EXPECT_EQ(fast.state, TierState::active);
  EXPECT_EQ(fast.size_bytes, 1048572ull * 1024);
  EXPECT_EQ(fast.used_bytes, 2048ull * 1024);
  EXPECT_EQ(fast.stored_bytes, 3145728u);
  EXPECT_DOUBLE_EQ(fast.compression_ratio, 4.0);
  const auto& disk = s.tiers[1];
  EXPECT_EQ(disk.kind, "file");
  EXPECT_EQ(disk.device, "/var/swap/tier.swap");
  EXPECT_EQ(disk.priority, 10);
  EXPECT_EQ(disk.used_bytes, 1024u * 1024);
  EXPECT_EQ(disk.stored_bytes, disk.used_bytes);
  EXPECT_DOUBLE_EQ(disk.compression_ratio, 1.0);
  EXPECT_DOUBLE_EQ(s.memory_pressure.some.avg10, 1.5);
  EXPECT_DOUBLE_EQ(s.memory_pressure.full.avg60, 0.1);
  EXPECT_EQ(s.memory_pressure.some.total_us, 1234u);
  EXPECT_DOUBLE_EQ(s.io_pressure.some.avg10, 3.0);
  EXPECT_GT(s.mem_total_bytes, 0u);
  EXPECT_DOUBLE_EQ(s.swap_in_pages_per_s, 100.0);
  EXPECT_DOUBLE_EQ(s.swap_out_pages_per_s, 500.0);
  EXPECT_EQ(s.config_source, (root_->path() / "etc/tierswap.yaml").string());
}

// tick() observes once (the signal providers are asked once per
// observation) and returns that observation's Status, completed like
// status(): the daemon publishes it on D-Bus without a second read.
TEST_F(ManagerTest, TickObservesOnceAndReturnsThatStatus) {
  manager_.reset();
  auto observations = std::make_shared<int>(0);  // outlives the test body with the Manager
  ManagerOptions mo;
  mo.version = "9.9";
  mo.now = [this] { return now_; };
  mo.providers.on_battery = [observations] {
    ++*observations;
    return std::optional<bool>{};
  };
  manager_ = std::make_unique<Manager>(*engine_, mo);
  manager_->set_state("running");
  set_used(*root_, "/var/swap/tier.swap", 1024);
  const Status s = manager_->tick();
  EXPECT_EQ(*observations, 1);
  EXPECT_EQ(s.version, "9.9");
  EXPECT_EQ(s.state, "running");
  ASSERT_EQ(s.tiers.size(), 2u);
  EXPECT_EQ(s.tiers[1].used_bytes, 1024u * 1024);
  (void)manager_->status();
  EXPECT_EQ(*observations, 2);
}

TEST_F(ManagerTest, PressureAlertOncePerRiseFromTheFakePsi) {
  const auto psi = [&](const char* res, double some, double full) {
    char b[160];
    std::snprintf(
        b, sizeof b,
        "some avg10=%.2f avg60=0.00 avg300=0.00 total=1\nfull avg10=%.2f avg60=0.00 avg300=0.00 total=1\n",
        some, full);
    test::spit(root_->path() / "proc/pressure" / res, b);
  };
  const auto alerts = [&] {
    int n = 0;
    for (const auto& l : events_.get()) n += l.starts_with("pressure ");
    return n;
  };
  psi("memory", 1.0, 0.0);
  psi("io", 0.0, 0.0);
  manager_->check_pressure();
  EXPECT_EQ(alerts(), 0);
  psi("memory", 25.0, 5.5);
  manager_->check_pressure();
  EXPECT_TRUE(events_.has_prefix("pressure memory 25.00 5.50"));
  manager_->check_pressure();  // still high: no second alert
  EXPECT_EQ(alerts(), 1);
  psi("memory", 2.0, 0.0);  // falls below the clear level: re-armed
  psi("io", 12.0, 1.0);
  manager_->check_pressure();
  EXPECT_TRUE(events_.has_prefix("pressure io 12.00 1.00"));
  psi("memory", 11.0, 0.0);
  manager_->check_pressure();
  EXPECT_EQ(alerts(), 3);
}

TEST_F(ManagerTest, RatesNeedASecondBetweenSamples) {
  test::spit(root_->path() / "proc/vmstat", "pswpin 0\npswpout 0\n");
  (void)manager_->status();
  test::spit(root_->path() / "proc/vmstat", "pswpin 50\npswpout 50\n");
  now_ += 100ms;
  EXPECT_DOUBLE_EQ(manager_->status().swap_in_pages_per_s, 0.0);  // too soon: keeps the previous rate
  now_ += 900ms;
  EXPECT_DOUBLE_EQ(manager_->status().swap_in_pages_per_s, 50.0);
}

TEST_F(ManagerTest, ConfiguredButNotSetUpIsUnavailable) {
  // A vram tier on a kernel without the nbd driver is planned as unavailable
  // (a warning): it shows as unavailable.
  auto cfg = test::slurp(root_->path() / "etc/tierswap.yaml");
  cfg.insert(cfg.find("zswap:"), "  - name: gpu\n    kind: vram\n    size: 1G\n    priority: 50\n");
  test::spit(root_->path() / "etc/tierswap.yaml", cfg);
  ASSERT_TRUE(manager_->reload());
  auto s = manager_->status();
  ASSERT_EQ(s.tiers.size(), 3u);
  EXPECT_EQ(s.tiers[1].name, "gpu");
  EXPECT_EQ(s.tiers[1].state, TierState::unavailable);
  EXPECT_EQ(manager_->demote("gpu").error().kind, ErrorKind::invalid_config);
  EXPECT_EQ(manager_->promote("gpu").error().kind, ErrorKind::invalid_config);
}

TEST_F(ManagerTest, DemotePrecheckRefusesWithTheNumbersAndTouchesNothing) {
  set_used(*root_, "/dev/zram1", 200 * 1024);  // 200 MiB in fast; the 64 MiB file has 63 MiB free
  set_used(*root_, "/var/swap/tier.swap", 1024);
  const auto journal_before = to_json(engine_->journal());
  const auto calls_before = calls();
  auto r = manager_->demote("fast");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::not_enough_memory);
  EXPECT_NE(r.error().message.find("tier fast holds 200 MiB; the other swap areas have 63 MiB free"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("memory.max"), std::string::npos) << r.error().message;
  EXPECT_EQ(calls(), calls_before);
  EXPECT_EQ(to_json(engine_->journal()), journal_before);
  EXPECT_EQ(tier(manager_->status(), "fast")->state, TierState::active);
  EXPECT_FALSE(engine_->busy_tier());
  EXPECT_TRUE(manager_->reload());  // nothing left busy
  EXPECT_TRUE(events_.get().empty());
}

TEST_F(ManagerTest, DemoteDrainsJournalsAndReloadLeavesItPromoteSwapsOnAtItsPriority) {
  set_used(*root_, "/dev/zram1", 1024);
  ASSERT_TRUE(manager_->demote("fast"));
  manager_->wait_idle();
  EXPECT_TRUE(contains(calls(), "swapoff /dev/zram1"));
  EXPECT_EQ(tier(manager_->status(), "fast")->state, TierState::drained);
  auto j = engine_->journal();
  ASSERT_NE(j.find_swap("/dev/zram1"), nullptr);
  EXPECT_TRUE(j.find_swap("/dev/zram1")->drained);
  EXPECT_FALSE(j.find_swap("/dev/zram1")->active);
  auto saved = load_journal(engine_->fs());
  ASSERT_TRUE(saved);
  EXPECT_TRUE(saved->find_swap("/dev/zram1")->drained);
  // A reload plans nothing for it: no silent swapon.
  auto p = engine_->plan();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->steps.empty()) << p->steps.size() << " steps";
  EXPECT_TRUE(std::any_of(p->notes.begin(), p->notes.end(), [](const std::string& n) {
    return n.find("drained on request") != std::string::npos;
  }));
  const auto n_calls = calls().size();
  ASSERT_TRUE(manager_->reload());
  EXPECT_EQ(calls().size(), n_calls);

  const auto ev = events_.get();
  ASSERT_GE(ev.size(), 4u);
  EXPECT_TRUE(ev.front().starts_with("action demote: tier fast (/dev/zram1): demote requested"))
      << ev.front();
  EXPECT_EQ(ev[1], "state fast demoting");
  EXPECT_TRUE(contains(ev, "progress fast 1048576/1048576"));
  EXPECT_EQ(ev.back(), "state fast drained");
  EXPECT_TRUE(events_.has_prefix("action demote: tier fast drained"));

  // Demoting a drained tier again is refused; promote puts it back.
  EXPECT_EQ(manager_->demote("fast").error().kind, ErrorKind::busy);
  ASSERT_TRUE(manager_->promote("fast"));
  EXPECT_EQ(calls().back(), "swapon /dev/zram1 prio=100 discard=1");
  EXPECT_EQ(tier(manager_->status(), "fast")->state, TierState::active);
  EXPECT_EQ(tier(manager_->status(), "fast")->priority, 100);
  EXPECT_TRUE(engine_->journal().find_swap("/dev/zram1")->active);
  EXPECT_FALSE(engine_->journal().find_swap("/dev/zram1")->drained);
  EXPECT_EQ(events_.get().back(), "state fast active");
  EXPECT_EQ(manager_->promote("fast").error().kind, ErrorKind::busy);  // active already
  auto p2 = engine_->plan();
  ASSERT_TRUE(p2);
  EXPECT_TRUE(p2->steps.empty());
}

TEST_F(ManagerTest, TeardownDoesNotSwapoffADrainedTierTwice) {
  ASSERT_TRUE(manager_->demote("fast"));
  manager_->wait_idle();
  ASSERT_TRUE(engine_->stop());
  const auto c = calls();
  EXPECT_EQ(std::count(c.begin(), c.end(), "swapoff /dev/zram1"), 1);
  EXPECT_TRUE(contains(c, "zram_hot_remove zram1"));
  EXPECT_FALSE(std::filesystem::exists(root_->path() / "run/tierswap/state.json"));
  engine_.reset();  // stopped already
}

TEST_F(ManagerTest, UnknownTierListsTheTiers) {
  auto r = manager_->demote("nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::not_found);
  EXPECT_NE(r.error().message.find("no tier named \"nope\" (tiers: fast, disk)"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(manager_->promote("nope").error().kind, ErrorKind::not_found);
}

TEST_F(ManagerTest, OneOperationAtATimeAndStatusStaysReadable) {
  kernel_->close_gate();
  ASSERT_TRUE(manager_->demote("fast"));
  ASSERT_TRUE(kernel_->wait_in_swapoff());
  // The engine lock is not held through the swapoff: status answers.
  auto s = manager_->status();
  EXPECT_EQ(tier(s, "fast")->state, TierState::demoting);
  EXPECT_EQ(manager_->demote("disk").error().kind, ErrorKind::busy);
  EXPECT_EQ(manager_->demote("fast").error().kind, ErrorKind::busy);
  EXPECT_EQ(manager_->promote("fast").error().kind, ErrorKind::busy);
  auto rl = manager_->reload();
  ASSERT_FALSE(rl);
  EXPECT_EQ(rl.error().kind, ErrorKind::busy);
  EXPECT_EQ(engine_->reload().error().kind, ErrorKind::busy);  // SIGHUP path too
  EXPECT_TRUE(manager_->busy());
  kernel_->open_gate();
  manager_->wait_idle();
  EXPECT_EQ(tier(manager_->status(), "fast")->state, TierState::drained);
  EXPECT_TRUE(manager_->reload());
}

TEST_F(ManagerTest, FailedSwapoffGoesBackToActiveAndSaysWhy) {
  kernel_->rec().fail_when("swapoff /dev/zram1", ENOMEM, true);
  ASSERT_TRUE(manager_->demote("fast"));
  manager_->wait_idle();
  EXPECT_EQ(tier(manager_->status(), "fast")->state, TierState::active);
  EXPECT_FALSE(engine_->journal().find_swap("/dev/zram1")->drained);
  EXPECT_TRUE(engine_->journal().find_swap("/dev/zram1")->active);
  EXPECT_TRUE(events_.has_prefix("action demote: tier fast stays active: swapoff of /dev/zram1 failed"));
  EXPECT_EQ(events_.get().back(), "state fast active");
}

}  // namespace
