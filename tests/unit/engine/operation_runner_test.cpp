// The operation runner on a fake root with the recording kernel: one busy
// state for reload, demote, promote and evacuate (each refused with EBUSY
// naming what runs and who asked), and every PolicyAction naming its caller.
#include "daemon/operation_runner.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "engine_fixture.hpp"

namespace tierswap {
namespace {

using namespace std::chrono_literals;

class RunnerTest : public test::EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (HasFatalFailure()) return;
    sink_.set(events_.make());
    runner_ = std::make_unique<OperationRunner>(
        *engine_, sink_, RunnerOptions{10ms, {}, [this](bool on) { reloading_ = on; }});
  }
  void drop() override { runner_.reset(); }
  std::string error_of(const Result<void>& r) { return r ? "ok" : r.error().message; }

  test::Events events_;
  EventSink sink_;
  std::unique_ptr<OperationRunner> runner_;
  std::atomic<bool> reloading_ = false;
};

TEST_F(RunnerTest, ADemoteMakesEveryOtherOperationBusyNamingItAndItsCaller) {
  kernel_->close_gate();
  ASSERT_TRUE(runner_->demote("fast", Caller::dbus(1000)));
  ASSERT_TRUE(kernel_->wait_in_swapoff());
  const auto running = runner_->running();
  ASSERT_TRUE(running);
  EXPECT_EQ(running->what, "demote");
  EXPECT_EQ(running->tier, "fast");
  EXPECT_EQ(running->caller.who, "uid 1000 over D-Bus");
  EXPECT_TRUE(running->caller.user);

  const std::string busy = "a demote of tier \"fast\" (asked by uid 1000 over D-Bus) is running";
  auto rl = runner_->reload(Caller::signal("SIGHUP"));
  EXPECT_FALSE(reloading_) << "a refused reload is not reloading";
  ASSERT_FALSE(rl);
  EXPECT_EQ(rl.error().code, EBUSY);
  EXPECT_NE(rl.error().message.find(busy), std::string::npos) << rl.error().message;
  for (const auto& r : {runner_->demote("disk", Caller::dbus(0)), runner_->promote("fast", Caller::dbus(0)),
                        runner_->evacuate("disk", Caller::policy("reserve"))}) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EBUSY);
    EXPECT_NE(r.error().message.find(busy), std::string::npos) << r.error().message;
  }
  kernel_->open_gate();
  runner_->wait_idle();
  EXPECT_FALSE(runner_->running());
  EXPECT_TRUE(runner_->reload(Caller::signal("SIGHUP")));
}

TEST_F(RunnerTest, AReloadMakesADemoteBusyAndTheOtherWayRound) {
  // A config without "disk": the reload swaps it off (held at the gate).
  auto cfg = test::slurp(root_->path() / "etc/tierswap.yaml");
  cfg.erase(cfg.find("  - name: disk"), cfg.find("zswap:") - cfg.find("  - name: disk"));
  test::spit(root_->path() / "etc/tierswap.yaml", cfg);
  kernel_->close_gate();
  auto reload = std::async(std::launch::async, [&] { return runner_->reload(Caller::signal("SIGHUP")); });
  ASSERT_TRUE(kernel_->wait_in_swapoff());
  const auto running = runner_->running();
  ASSERT_TRUE(running);
  EXPECT_EQ(running->what, "reload");
  EXPECT_TRUE(reloading_);
  auto d = runner_->demote("fast", Caller::dbus(1000));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, EBUSY);
  EXPECT_NE(d.error().message.find("a reload (asked by SIGHUP) is running"), std::string::npos)
      << d.error().message;
  auto e = runner_->evacuate("fast", Caller::policy("reserve"));
  EXPECT_EQ(e.error().code, EBUSY);
  kernel_->open_gate();
  auto r = reload.get();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GT(*r, 0u);
  EXPECT_FALSE(reloading_);
  EXPECT_TRUE(events_.has_prefix("action reload: reload requested by SIGHUP: applied"));
  EXPECT_TRUE(runner_->demote("fast", Caller::dbus(1000)));
  runner_->wait_idle();
}

TEST_F(RunnerTest, EveryActionNamesWhoAsked) {
  test::set_swap_used(root_->path() / "proc/swaps", "/dev/zram1", 1024);
  ASSERT_TRUE(runner_->evacuate("fast", Caller::policy("reserve", "free VRAM 512 MiB < reserve 1.0 GiB")));
  runner_->wait_idle();
  EXPECT_TRUE(events_.has_prefix(
      "action evacuate: tier fast (/dev/zram1): evacuate requested by daemon policy rule \"reserve\" "
      "(free VRAM 512 MiB < reserve 1.0 GiB); moving 1.0 MiB"));
  EXPECT_TRUE(events_.has_prefix("action evacuate: tier fast drained: "));
  EXPECT_EQ(events_.get().back(), "state fast drained");
  ASSERT_TRUE(runner_->promote("fast", Caller::policy("cooldown", "calm for 300 s")));
  EXPECT_TRUE(events_.has_prefix(
      "action promote: tier fast (/dev/zram1): promote requested by daemon policy rule \"cooldown\" "
      "(calm for 300 s); back in use at priority 100"));
  ASSERT_TRUE(runner_->demote("fast", Caller::dbus(1000)));
  runner_->wait_idle();
  EXPECT_TRUE(
      events_.has_prefix("action demote: tier fast (/dev/zram1): demote requested by uid 1000 over D-Bus"));
  ASSERT_TRUE(runner_->promote("fast", Caller::dbus(std::nullopt)));
  EXPECT_TRUE(
      events_.has_prefix("action promote: tier fast (/dev/zram1): promote requested by a caller over D-Bus"));
}

TEST_F(RunnerTest, EvacuateKeepsTheRoomRuleAndLeavesNothingBusy) {
  test::set_swap_used(root_->path() / "proc/swaps", "/dev/zram1", 200 * 1024);
  const auto calls = kernel_->rec().calls();
  auto r = runner_->evacuate("fast", Caller::policy("reserve"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOMEM);
  EXPECT_NE(r.error().message.find("tier fast holds 200 MiB"), std::string::npos) << r.error().message;
  EXPECT_EQ(kernel_->rec().calls(), calls);
  EXPECT_FALSE(runner_->running());
  EXPECT_FALSE(engine_->busy_tier());
  EXPECT_TRUE(events_.get().empty());
  auto unknown = runner_->evacuate("nope", Caller::policy("reserve"));
  EXPECT_EQ(unknown.error().code, ENOENT);
  EXPECT_FALSE(runner_->running());
}

}  // namespace
}  // namespace tierswap
