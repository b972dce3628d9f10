// The policy engine live in the Manager, on a fake root with the recording
// kernel and an injected VRAM sample provider: a tick decides, the runner
// evacuates (the demote path) with the rule as caller, counters show in the
// status, refusals are said once per episode, the cool-down brings the tier
// back, and a person's demote is left alone. --record's lines replay.
#include <gtest/gtest.h>

#include "daemon/manager.hpp"
#include "engine_fixture.hpp"
#include "policy/trace.hpp"

namespace tierswap {
namespace {

using namespace std::chrono_literals;

class PolicyLoopTest : public test::EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (HasFatalFailure()) return;
    ManagerOptions mo;
    mo.poll_interval = 10ms;
    mo.now = [this] { return now_; };
    mo.providers.vram = [this] { return vram_; };
    mo.providers.on_battery = [] { return std::optional<bool>{}; };
    mo.record = [this](const std::string& line) { recorded_ += line; };
    manager_ = std::make_unique<Manager>(*engine_, mo);
    manager_->set_state("running");
    manager_->set_events(events_.make());
  }
  void drop() override { manager_.reset(); }
  // One GPU sample for tier "fast" with `free` bytes free.
  void gpu_free(std::uint64_t free) { vram_ = {{"fast", free, 24ULL << 30, 0, 0, 0}}; }
  TierState state_of(const std::string& name) {
    for (const auto& t : manager_->status().tiers)
      if (t.name == name) return t.state;
    return TierState::unavailable;
  }
  std::uint64_t counter(const std::string& action, const std::string& rule) {
    for (const auto& c : manager_->status().policy_actions)
      if (c.action == action && c.rule == rule) return c.count;
    return 0;
  }
  int actions_with(const std::string& part) {
    int n = 0;
    for (const auto& l : events_.get()) n += l.starts_with("action ") && l.find(part) != std::string::npos;
    return n;
  }
  int swapoffs() {
    int n = 0;
    for (const auto& c : kernel_->rec().calls()) n += c == "swapoff /dev/zram1";
    return n;
  }

  std::unique_ptr<Manager> manager_;
  test::Events events_;
  std::vector<policy::VramTierSample> vram_;
  std::string recorded_;
  std::chrono::steady_clock::time_point now_{std::chrono::seconds(1000)};
};

TEST_F(PolicyLoopTest, LowFreeVramEvacuatesThroughTheRunnerNamingTheRule) {
  gpu_free(8ULL << 30);
  manager_->tick();
  EXPECT_EQ(swapoffs(), 0);
  EXPECT_TRUE(manager_->status().policy_actions.empty());

  now_ += 2s;
  gpu_free(512ULL << 20);  // below the 1 GiB reserve
  manager_->tick();
  manager_->wait_idle();
  EXPECT_EQ(swapoffs(), 1);
  EXPECT_EQ(state_of("fast"), TierState::drained);
  EXPECT_EQ(actions_with("action evacuate: tier fast (/dev/zram1): evacuate requested by daemon policy rule "
                         "\"reserve\" (free VRAM"),
            1)
      << ::testing::PrintToString(events_.get());
  EXPECT_EQ(counter("evacuate", "reserve"), 1u);
  manager_->tick();  // evacuated already: nothing more
  manager_->wait_idle();
  EXPECT_EQ(swapoffs(), 1);
  EXPECT_EQ(counter("evacuate", "reserve"), 1u);

  // The recording replays to the same decision, at the same time.
  auto trace = policy::parse_trace(recorded_, "recorded");
  ASSERT_TRUE(trace) << trace.error().message;
  ASSERT_EQ(trace->size(), 3u);
  EXPECT_EQ((*trace)[1].time_ms, 2000u);
  ASSERT_EQ((*trace)[1].vram.size(), 1u);
  EXPECT_EQ((*trace)[1].vram[0].tier_size_bytes, 1ULL << 30) << "the tier's size from the config";
  const auto replay = policy::simulate(*trace, policy::PolicySpec{});
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_EQ(replay[0].time_ms, 2000u);
  EXPECT_EQ(replay[0].rule, "reserve");
}

// The GPU watch between ticks: quiet while the rules are clear, one early
// tick when the tier crosses the reserve (not one per watch while it stays
// there), and nothing to watch once the tick has moved the tier's blocks out.
TEST_F(PolicyLoopTest, GpuWatchAsksForOneEarlyTickWhenATierCrossesIntoAVramRule) {
  gpu_free(8ULL << 30);
  auto w = manager_->gpu_watch();
  EXPECT_TRUE(w.watching);
  EXPECT_FALSE(w.tick_now);

  gpu_free(512ULL << 20);  // below the 1 GiB reserve
  w = manager_->gpu_watch();
  EXPECT_TRUE(w.tick_now);
  w = manager_->gpu_watch();
  EXPECT_FALSE(w.tick_now) << "a rule that keeps holding asks for one early tick only";
  EXPECT_EQ(swapoffs(), 0) << "the watch itself changes nothing";

  gpu_free(8ULL << 30);
  EXPECT_FALSE(manager_->gpu_watch().tick_now);
  gpu_free(512ULL << 20);  // crosses again: a new episode
  EXPECT_TRUE(manager_->gpu_watch().tick_now);

  manager_->tick();
  manager_->wait_idle();
  EXPECT_EQ(state_of("fast"), TierState::drained);
  w = manager_->gpu_watch();
  EXPECT_FALSE(w.watching) << "no tier's blocks are in VRAM: the loop goes back to the tick's pace";
  EXPECT_FALSE(w.tick_now);
}

TEST_F(PolicyLoopTest, GpuWatchFollowsTheForeignRule) {
  vram_ = {{"fast", 8ULL << 30, 24ULL << 30, 0, 0, 0}};
  EXPECT_FALSE(manager_->gpu_watch().tick_now);
  vram_[0].foreign_vram_bytes = 3ULL << 30;  // past the 2 GiB default
  EXPECT_TRUE(manager_->gpu_watch().tick_now);
}

TEST_F(PolicyLoopTest, ARefusedEvacuationIsSaidOncePerEpisodeAndRetriedSlowly) {
  test::set_swap_used(root_->path() / "proc/swaps", "/dev/zram1", 200 * 1024);  // no room elsewhere
  gpu_free(512ULL << 20);
  for (int i = 0; i < 5; ++i) {
    manager_->tick();
    now_ += 2s;
  }
  EXPECT_EQ(swapoffs(), 0);
  EXPECT_EQ(actions_with("was refused: tier fast holds 200 MiB"), 1)
      << ::testing::PrintToString(events_.get());
  EXPECT_EQ(counter("evacuate", "reserve"), 1u);
  EXPECT_EQ(state_of("fast"), TierState::active);

  now_ += 60s;  // the retry: refused again, not said again
  manager_->tick();
  EXPECT_EQ(counter("evacuate", "reserve"), 2u);
  EXPECT_EQ(actions_with("was refused"), 1);

  gpu_free(8ULL << 30);  // the rule clears: the episode ends
  manager_->tick();
  now_ += 2s;
  gpu_free(512ULL << 20);
  manager_->tick();
  EXPECT_EQ(actions_with("was refused"), 2);

  test::set_swap_used(root_->path() / "proc/swaps", "/dev/zram1", 1024);  // room now
  now_ += 61s;
  manager_->tick();
  manager_->wait_idle();
  EXPECT_EQ(swapoffs(), 1);
  EXPECT_EQ(state_of("fast"), TierState::drained);
}

TEST_F(PolicyLoopTest, TheCoolDownPromotesWhatThePolicyEvacuated) {
  gpu_free(512ULL << 20);
  manager_->tick();
  manager_->wait_idle();
  ASSERT_EQ(state_of("fast"), TierState::drained);
  now_ += 2s;
  gpu_free(20ULL << 30);  // calm from here
  manager_->tick();
  EXPECT_EQ(state_of("fast"), TierState::drained);
  now_ += 300s;
  manager_->tick();
  EXPECT_EQ(state_of("fast"), TierState::active);
  EXPECT_EQ(kernel_->rec().calls().back(), "swapon /dev/zram1 prio=100 discard=1");
  EXPECT_EQ(actions_with("promote requested by daemon policy rule \"cooldown\""), 1);
  EXPECT_EQ(counter("promote", "cooldown"), 1u);
}

TEST_F(PolicyLoopTest, APersonsDemoteIsLeftAloneAndHoldsThePolicyOff) {
  kernel_->close_gate();
  ASSERT_TRUE(manager_->demote_as("disk", 1000));
  ASSERT_TRUE(kernel_->wait_in_swapoff());
  gpu_free(512ULL << 20);
  manager_->tick();  // a person's demote runs: no action at all
  EXPECT_TRUE(manager_->status().policy_actions.empty());
  auto trace = policy::parse_trace(recorded_, "recorded");
  ASSERT_TRUE(trace && trace->size() == 1u);
  EXPECT_TRUE((*trace)[0].user_demote_running);
  kernel_->open_gate();
  manager_->wait_idle();

  // A tier a person drained is not the policy's to bring back.
  ASSERT_TRUE(manager_->demote_as("fast", 1000));
  manager_->wait_idle();
  gpu_free(20ULL << 30);
  for (int i = 0; i < 3; ++i) {
    now_ += 400s;
    manager_->tick();
  }
  EXPECT_EQ(state_of("fast"), TierState::drained);
  EXPECT_TRUE(manager_->status().policy_actions.empty());
}

}  // namespace
}  // namespace tierswap
