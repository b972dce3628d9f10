// decide(): each rule at its edge, hysteresis, the hourly bound, busy
// flags, determinism. Snapshots are built here; no files, no clock.
#include "policy/decide.hpp"

#include <gtest/gtest.h>

namespace tierswap::policy {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

// A quiet machine: 24 GiB GPU, the 4 GiB tier, 512 MiB used by others.
Snapshot quiet(std::uint64_t t_s) {
  Snapshot s;
  s.time_ms = t_s * 1000;
  s.io.some_avg10 = 1.0;
  s.vram.push_back(VramTierSample{"vram", 19968 * kMiB, 24576 * kMiB, 512 * kMiB, 200, 4096 * kMiB});
  return s;
}

std::vector<Action> run(const std::vector<Snapshot>& trace, const PolicySpec& spec = {}) {
  return simulate(trace, spec);
}

TEST(PolicyDecide, QuietMachineDoesNothing) {
  std::vector<Snapshot> t;
  for (int i = 0; i < 100; ++i) t.push_back(quiet(i * 10));
  EXPECT_TRUE(run(t).empty());
}

TEST(PolicyDecide, ReserveEdge) {
  PolicySpec spec;
  Snapshot at = quiet(0);
  at.vram[0].vram_free_bytes = spec.reserve_bytes;  // at the reserve: not below
  EXPECT_TRUE(decide(at, {}, spec).actions.empty());
  Snapshot below = quiet(0);
  below.vram[0].vram_free_bytes = spec.reserve_bytes - 1;
  const auto d = decide(below, {}, spec);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].kind, ActionKind::evacuate);
  EXPECT_EQ(d.actions[0].rule, "reserve");
  EXPECT_EQ(d.actions[0].why, "free VRAM 1023 MiB is below the reserve 1024 MiB");
  EXPECT_EQ(d.next.tiers.at("vram").mode, Mode::evacuated);
}

TEST(PolicyDecide, ForeignEdgeAndOff) {
  PolicySpec spec;
  Snapshot at = quiet(0);
  at.vram[0].foreign_vram_bytes = spec.foreign_vram_bytes;
  EXPECT_TRUE(decide(at, {}, spec).actions.empty());
  Snapshot past = quiet(0);
  past.vram[0].foreign_vram_bytes = spec.foreign_vram_bytes + kMiB;
  const auto d = decide(past, {}, spec);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].rule, "foreign");
  EXPECT_EQ(d.actions[0].why, "other processes use 2049 MiB of VRAM, past 2048 MiB");
  spec.foreign_vram_bytes = 0;  // rule off
  EXPECT_TRUE(decide(past, {}, spec).actions.empty());
}

TEST(PolicyDecide, LatencyNeedsBothSlowAndIoPressure) {
  PolicySpec spec;
  Snapshot s = quiet(0);
  s.vram[0].p99_latency_us = spec.latency_p99_us + 1;
  s.io.some_avg10 = spec.io_pressure_percent - 0.1;  // slow, but io calm
  EXPECT_TRUE(decide(s, {}, spec).actions.empty());
  s.io.some_avg10 = spec.io_pressure_percent;
  s.vram[0].p99_latency_us = spec.latency_p99_us;  // io high, latency at budget
  EXPECT_TRUE(decide(s, {}, spec).actions.empty());
  s.vram[0].p99_latency_us = spec.latency_p99_us + 1;
  const auto d = decide(s, {}, spec);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].rule, "latency");
  EXPECT_EQ(d.actions[0].why,
            "p99 latency 2001 us is over the budget 2000 us while io pressure is 20.0% (threshold 20.0%)");
  spec.latency_p99_us = 0;
  EXPECT_TRUE(decide(s, {}, spec).actions.empty());
}

TEST(PolicyDecide, OnBatteryFollowsTheSpec) {
  Snapshot s = quiet(0);
  s.on_battery = true;
  PolicySpec laptop;
  laptop.on_battery = true;
  const auto d = decide(s, {}, laptop);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].rule, "on_battery");
  PolicySpec server;
  server.on_battery = false;
  EXPECT_TRUE(decide(s, {}, server).actions.empty());
}

TEST(PolicyDecide, RulesCheckedInOrderOneActionPerTier) {
  Snapshot s = quiet(0);
  s.vram[0].vram_free_bytes = 0;
  s.vram[0].foreign_vram_bytes = 20000 * kMiB;
  s.on_battery = true;
  const auto d = decide(s, {}, {});
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].rule, "reserve");
}

// Evacuated at 0 s by the foreign rule; `foreign` from 10 s on.
std::vector<Snapshot> after_evacuation(std::uint64_t foreign, int samples) {
  std::vector<Snapshot> t;
  Snapshot first = quiet(0);
  first.vram[0].foreign_vram_bytes = 3000 * kMiB;
  t.push_back(first);
  for (int i = 1; i <= samples; ++i) {
    Snapshot s = quiet(i * 10);
    s.vram[0].foreign_vram_bytes = foreign;
    t.push_back(s);
  }
  return t;
}

TEST(PolicyDecide, PromotesAfterCooldown) {
  const auto actions = run(after_evacuation(512 * kMiB, 60));
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[1].kind, ActionKind::promote);
  EXPECT_EQ(actions[1].rule, "cooldown");
  EXPECT_EQ(actions[1].time_ms, 310'000u);  // calm from 10 s, cool-down 300 s
}

TEST(PolicyDecide, HysteresisHoldsPromoteInsideTheMargin) {
  // Below the threshold (2048 MiB) but above 80% of it (1638.4 MiB): clear
  // for evacuation, not clear enough to come back.
  EXPECT_EQ(run(after_evacuation(1700 * kMiB, 100)).size(), 1u);
  EXPECT_EQ(run(after_evacuation(1638 * kMiB, 100)).size(), 2u);
  // Free VRAM must hold reserve * 1.2 plus the tier's own size.
  auto t = after_evacuation(512 * kMiB, 100);
  for (std::size_t i = 1; i < t.size(); ++i) t[i].vram[0].vram_free_bytes = 4096 * kMiB + 1228 * kMiB;
  EXPECT_EQ(run(t).size(), 1u);
  for (std::size_t i = 1; i < t.size(); ++i) t[i].vram[0].vram_free_bytes = 4096 * kMiB + 1229 * kMiB;
  EXPECT_EQ(run(t).size(), 2u);
}

TEST(PolicyDecide, ABreakInTheCalmRestartsTheCooldown) {
  auto t = after_evacuation(512 * kMiB, 60);
  t[20].vram[0].foreign_vram_bytes = 1700 * kMiB;  // 200 s: inside the margin
  const auto actions = run(t);
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[1].time_ms, 510'000u);  // calm again from 210 s
}

TEST(PolicyDecide, BusyFlagsSuppressActions) {
  for (int which = 0; which < 2; ++which) {
    Snapshot s = quiet(0);
    s.vram[0].vram_free_bytes = 0;
    (which == 0 ? s.reload_running : s.user_demote_running) = true;
    const auto d = decide(s, {}, {});
    EXPECT_TRUE(d.actions.empty()) << which;
    EXPECT_EQ(d.next.tiers.at("vram").mode, Mode::active);
  }
  // While evacuated: no promote while busy, and a full cool-down after.
  auto t = after_evacuation(512 * kMiB, 70);
  for (int i = 25; i <= 30; ++i) t[i].reload_running = true;  // 250..300 s
  const auto actions = run(t);
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[1].time_ms, 610'000u);  // calm from 310 s
}

TEST(PolicyDecide, HourlyTransitionBound) {
  // Contention for 10 s every 400 s: with no bound the tier would flap 9 times
  // an hour each way.
  std::vector<Snapshot> t;
  for (int s = 0; s < 4 * 3600; s += 10) {
    Snapshot x = quiet(s);
    if (s % 400 == 0) x.vram[0].foreign_vram_bytes = 3000 * kMiB;
    t.push_back(x);
  }
  for (unsigned max : {2u, 4u, 6u}) {
    PolicySpec spec;
    spec.max_transitions_per_hour = max;
    const auto actions = run(t, spec);
    ASSERT_GE(actions.size(), 2u) << max;
    for (std::size_t i = 0; i < actions.size(); ++i) {
      std::size_t in_hour = 0;
      for (std::size_t j = i; j < actions.size() && actions[j].time_ms < actions[i].time_ms + kHourMs; ++j)
        ++in_hour;
      EXPECT_LE(in_hour, max) << "max " << max << " from " << format_time(actions[i].time_ms);
    }
  }
  PolicySpec four;
  const auto actions = run(t, four);
  // 0 evacuate, 310 promote, 400 evacuate; the next promote waits until the
  // hour holds 2 transitions: 0 ages out at 3600, and 3600 is a contention
  // sample; calm from 3610 gives 3910.
  ASSERT_GE(actions.size(), 4u);
  EXPECT_EQ(actions[1].time_ms, 310'000u);
  EXPECT_EQ(actions[2].time_ms, 400'000u);
  EXPECT_EQ(actions[3].time_ms, 3'910'000u);
  EXPECT_EQ(actions[3].kind, ActionKind::promote);
}

TEST(PolicyDecide, HourWindowEdge) {
  // A transition exactly an hour ago is out of the window (now - 1 h, now].
  PolicySpec spec;
  spec.max_transitions_per_hour = 2;  // a promote needs an empty hour
  PolicyState st;
  st.tiers["vram"] = TierState{Mode::evacuated, 0, 0, {0}};
  Snapshot s = quiet(3599);
  s.time_ms = kHourMs - 1;
  EXPECT_TRUE(decide(s, st, spec).actions.empty());
  s.time_ms = kHourMs;
  const auto d = decide(s, st, spec);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].kind, ActionKind::promote);
  EXPECT_EQ(d.next.tiers.at("vram").transitions_ms, (std::vector<std::uint64_t>{kHourMs}));
}

TEST(PolicyDecide, Deterministic) {
  std::vector<Snapshot> t;
  for (int s = 0; s < 7200; s += 10) {
    Snapshot x = quiet(s);
    x.vram[0].foreign_vram_bytes = (s / 700 % 2) ? 3000 * kMiB : 512 * kMiB;
    x.on_battery = s > 5000;
    t.push_back(x);
  }
  const auto a = run(t);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, run(t));
  PolicyState st;
  const auto d1 = decide(t[70], st, {});
  const auto d2 = decide(t[70], st, {});
  EXPECT_EQ(d1.actions, d2.actions);
}

TEST(PolicyDecide, TiersAreIndependent) {
  Snapshot s = quiet(0);
  s.vram.push_back(VramTierSample{"vram1", 100 * kMiB, 24576 * kMiB, 0, 200, 0});
  const auto d = decide(s, {}, {});
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].tier, "vram1");
  EXPECT_EQ(d.next.tiers.at("vram").mode, Mode::active);
}

// --- the cgroup rule ------------------------------------------------------

// A named service stalls: memory full avg10 `full` in postgresql.service,
// the tier holding 128 MiB of pages.
Snapshot stalled(std::uint64_t t_s, double full, std::uint64_t p99_us = 200, double swap_in = 0) {
  Snapshot s = quiet(t_s);
  s.swap_used_bytes["vram"] = 128 * kMiB;
  s.cgroup_memory["postgresql.service"] = {full * 1.5 > 100 ? 100 : full * 1.5, full};
  s.cgroup_memory["system.slice"] = {0.5, 0.0};
  s.vram[0].p99_latency_us = p99_us;
  s.swap_in_pages_per_s = swap_in;
  return s;
}

TEST(PolicyDecide, CgroupStallWithASlowTierEvacuatesAtTheThreshold) {
  PolicySpec spec;  // cgroup_full_percent 10, latency budget 2000 us, io calm (1%)
  EXPECT_TRUE(decide(stalled(0, 9.99, 2001), {}, spec).actions.empty());  // below the threshold
  EXPECT_TRUE(decide(stalled(0, 10, 2000), {}, spec).actions.empty());    // at the budget: not slow
  const auto d = decide(stalled(0, 10, 2001), {}, spec);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].kind, ActionKind::evacuate);
  EXPECT_EQ(d.actions[0].rule, "cgroup");
  EXPECT_EQ(d.actions[0].why,
            "postgresql.service stalls on memory (full 10.0%, threshold 10.0%) while the tier's p99 latency "
            "2001 us is over the budget 2000 us");
  EXPECT_EQ(d.next.tiers.at("vram").mode, Mode::evacuated);
  // The latency rule proper does not hold (io pressure 1%): this is the
  // cgroup's stall deciding, not the machine's.
  spec.cgroup_full_percent = 0;  // rule off
  EXPECT_TRUE(decide(stalled(0, 50, 9000), {}, spec).actions.empty());
}

TEST(PolicyDecide, CgroupSwapInArm) {
  PolicySpec spec;
  // Off by default: a fast tier is left alone however much is swapped in.
  EXPECT_TRUE(decide(stalled(0, 30, 200, 1e6), {}, spec).actions.empty());
  spec.swap_in_pages_per_s = 2560;
  EXPECT_TRUE(decide(stalled(0, 30, 200, 2559), {}, spec).actions.empty());
  const auto d = decide(stalled(0, 30, 200, 2560), {}, spec);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].rule, "cgroup");
  EXPECT_EQ(
      d.actions[0].why,
      "postgresql.service stalls on memory (full 30.0%, threshold 10.0%) while 2560 pages/s are swapped "
      "in (threshold 2560)");
  // With the latency arm off, only the swap-in arm decides.
  spec.latency_p99_us = 0;
  EXPECT_TRUE(decide(stalled(0, 30, 9000, 100), {}, spec).actions.empty());
  EXPECT_EQ(decide(stalled(0, 30, 9000, 3000), {}, spec).actions.size(), 1u);
}

TEST(PolicyDecide, CgroupRuleNeedsANamedCgroupAndATierThatHoldsPages) {
  PolicySpec spec;
  // No cgroup named (or none whose memory.pressure the kernel has: the
  // daemon leaves those out of the snapshot): never holds.
  Snapshot none = stalled(0, 50, 9000);
  none.cgroup_memory.clear();
  EXPECT_TRUE(decide(none, {}, spec).actions.empty());
  // A tier known to hold no page is not what the cgroup waits for.
  Snapshot empty = stalled(0, 50, 9000);
  empty.swap_used_bytes["vram"] = 0;
  EXPECT_TRUE(decide(empty, {}, spec).actions.empty());
  // Its use unknown (a trace without swap_used_bytes): the rule applies.
  Snapshot unknown = stalled(0, 50, 9000);
  unknown.swap_used_bytes.clear();
  EXPECT_EQ(decide(unknown, {}, spec).actions.size(), 1u);
  // The most stalled cgroup is the one named.
  Snapshot two = stalled(0, 12, 9000);
  two.cgroup_memory["system.slice"] = {40, 20};
  const auto d = decide(two, {}, spec);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_TRUE(d.actions[0].why.starts_with("system.slice stalls on memory (full 20.0%")) << d.actions[0].why;
}

TEST(PolicyDecide, CgroupRuleComesAfterLatencyAndBeforeBattery) {
  Snapshot s = stalled(0, 50, 9000);
  s.on_battery = true;
  EXPECT_EQ(decide(s, {}, {}).actions.at(0).rule, "cgroup");
  s.io.some_avg10 = 50;
  EXPECT_EQ(decide(s, {}, {}).actions.at(0).rule, "latency");
}

// Evacuated by the cgroup rule at 0 s; the cgroup's full avg10 is `full`
// from 10 s on (the tier's own p99 means nothing while evacuated).
std::vector<Snapshot> after_cgroup_evacuation(double full, int samples) {
  std::vector<Snapshot> t{stalled(0, 30, 5000)};
  for (int i = 1; i <= samples; ++i) t.push_back(stalled(i * 10, full, 5000));
  return t;
}

TEST(PolicyDecide, CgroupHysteresisHoldsThePromote) {
  // Below the threshold (10%) but above 80% of it (8%): not calm enough.
  EXPECT_EQ(run(after_cgroup_evacuation(8.1, 60)).size(), 1u);
  const auto back = run(after_cgroup_evacuation(8.0, 60));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].kind, ActionKind::promote);
  EXPECT_EQ(back[1].time_ms, 310'000u);  // calm from 10 s, cool-down 300 s
  EXPECT_NE(back[1].why.find("postgresql.service memory full 8.0%"), std::string::npos) << back[1].why;
  // A stall inside the margin restarts the cool-down.
  auto t = after_cgroup_evacuation(2, 60);
  t[20].cgroup_memory["postgresql.service"].full_avg10 = 9;
  const auto broken = run(t);
  ASSERT_EQ(broken.size(), 2u);
  EXPECT_EQ(broken[1].time_ms, 510'000u);
  // Off: the cgroups do not hold the promote.
  PolicySpec off;
  off.cgroup_full_percent = 0;
  auto u = after_cgroup_evacuation(50, 60);
  u[0].vram[0].vram_free_bytes = 0;  // evacuated by the reserve rule instead
  EXPECT_EQ(run(u, off).size(), 2u);
}

TEST(PolicyDecide, CgroupRuleCountsAgainstTheHourlyBound) {
  // The cgroup stalls for 10 s every 400 s while the tier is slow.
  std::vector<Snapshot> t;
  for (int i = 0; i < 360; ++i) t.push_back(stalled(i * 10, (i * 10) % 400 < 10 ? 30 : 0, 5000));
  const auto actions = run(t);
  std::vector<std::uint64_t> times;
  for (const auto& a : actions) times.push_back(a.time_ms);
  // Evacuate at 0, promote after 300 s calm (310 s), evacuate at 400 s; the
  // next promote must leave room for an evacuation in the hour: waits.
  ASSERT_GE(actions.size(), 3u) << ::testing::PrintToString(times);
  EXPECT_EQ(actions[0].rule, "cgroup");
  EXPECT_EQ(actions[1].time_ms, 310'000u);
  EXPECT_EQ(actions[2].time_ms, 400'000u);
  for (std::size_t i = 0; i < actions.size(); ++i) {
    int in_hour = 0;
    for (std::size_t j = 0; j <= i; ++j) in_hour += actions[j].time_ms + kHourMs > actions[i].time_ms;
    EXPECT_LE(in_hour, 4) << i;
  }
}

TEST(PolicyDecide, FormatsTimes) {
  EXPECT_EQ(format_time(0), "00:00:00.000");
  EXPECT_EQ(format_time(86'400'000 + 61'005), "24:01:01.005");
}

}  // namespace
}  // namespace tierswap::policy
