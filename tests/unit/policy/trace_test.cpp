// The trace reader (errors name the line and key) and the recorded traces
// under tests/fixtures/traces/, replayed through decide() with their exact
// actions and times.
#include "policy/trace.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "policy/decide.hpp"

namespace tierswap::policy {
namespace {

std::string fixture(const std::string& name) {
  const std::string path = std::string(TIERSWAP_SOURCE_DIR) + "/tests/fixtures/traces/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<Snapshot> load(const std::string& name) {
  auto r = parse_trace(fixture(name), name);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : std::vector<Snapshot>{};
}

// "HH:MM:SS.mmm kind rule" for each action.
std::vector<std::string> brief(const std::vector<Action>& actions) {
  std::vector<std::string> out;
  for (const auto& a : actions)
    out.push_back(format_time(a.time_ms) + " " + to_string(a.kind) + " " + a.rule);
  return out;
}

using V = std::vector<std::string>;

TEST(PolicyTrace, ParsesAllFields) {
  const auto r = parse_trace(
      "# a comment\n\n"
      R"({"t_ms": 5, "memory": {"some": 1.5, "full": 0.5}, "io": {"some": 2, "full": 1},)"
      R"( "mem_available_bytes": 7, "mem_total_bytes": 9, "swap_used_bytes": {"zram": 3},)"
      R"( "vram": [{"tier": "g", "free_bytes": 10, "total_bytes": 20, "foreign_bytes": 4, "p99_us": 99, "size_bytes": 6}],)"
      R"( "on_battery": true, "reload_running": true, "user_demote_running": true})"
      "\n{\"t_ms\": 5}\n",
      "t");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  const Snapshot& s = (*r)[0];
  EXPECT_EQ(s.time_ms, 5u);
  EXPECT_DOUBLE_EQ(s.memory.some_avg10, 1.5);
  EXPECT_DOUBLE_EQ(s.memory.full_avg10, 0.5);
  EXPECT_DOUBLE_EQ(s.io.some_avg10, 2);
  EXPECT_DOUBLE_EQ(s.io.full_avg10, 1);
  EXPECT_EQ(s.mem_available_bytes, 7u);
  EXPECT_EQ(s.mem_total_bytes, 9u);
  EXPECT_EQ(s.swap_used_bytes.at("zram"), 3u);
  ASSERT_EQ(s.vram.size(), 1u);
  EXPECT_EQ(s.vram[0].tier, "g");
  EXPECT_EQ(s.vram[0].vram_free_bytes, 10u);
  EXPECT_EQ(s.vram[0].vram_total_bytes, 20u);
  EXPECT_EQ(s.vram[0].foreign_vram_bytes, 4u);
  EXPECT_EQ(s.vram[0].p99_latency_us, 99u);
  EXPECT_EQ(s.vram[0].tier_size_bytes, 6u);
  EXPECT_TRUE(s.on_battery);
  EXPECT_TRUE(s.reload_running);
  EXPECT_TRUE(s.user_demote_running);
  EXPECT_FALSE((*r)[1].on_battery);
}

// The SAX pass gives these lines up to the tree walk, which must read them
// the same way: a key written twice keeps its last value; keys in any order.
TEST(PolicyTrace, LinesTheFastPassLeavesToTheTreeWalk) {
  const auto r = parse_trace(
      "{\"t_ms\": 1, \"t_ms\": 2, \"io\": {\"some\": 3}}\n"
      "{\"vram\": [{\"p99_us\": 7, \"tier\": \"v\"}], \"on_battery\": true, \"t_ms\": 4}\n",
      "t");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].time_ms, 2u);
  EXPECT_DOUBLE_EQ((*r)[0].io.some_avg10, 3);
  EXPECT_EQ((*r)[1].time_ms, 4u);
  ASSERT_EQ((*r)[1].vram.size(), 1u);
  EXPECT_EQ((*r)[1].vram[0].p99_latency_us, 7u);
  EXPECT_TRUE((*r)[1].on_battery);
}

std::string error_of(std::string_view text) {
  auto r = parse_trace(text, "x.jsonl");
  return r ? std::string("(parsed)") : r.error().message;
}

TEST(PolicyTrace, ErrorsNameTheLineAndKey) {
  EXPECT_EQ(error_of("{\"t_ms\":0}\n{\"t_ms\":1\n"), "x.jsonl:2: not a JSON object (one snapshot per line)");
  EXPECT_EQ(error_of("# c\n[1]\n"), "x.jsonl:2: expected a JSON object, got [1]");
  EXPECT_EQ(error_of("{\"io\":{}}"), "x.jsonl:1: t_ms: missing: every snapshot has its time");
  EXPECT_EQ(error_of("{\"t_ms\":-1}"), "x.jsonl:1: t_ms: expected a non-negative integer, got -1");
  EXPECT_EQ(error_of("{\"t_ms\":9}\n\n{\"t_ms\":8}"),
            "x.jsonl:3: t_ms: 8 is before the previous snapshot's 9");
  EXPECT_EQ(error_of("{\"t_ms\":0,\"io\":{\"some\":101}}"),
            "x.jsonl:1: io.some: expected a percentage 0..100, got 101");
  EXPECT_EQ(error_of("{\"t_ms\":0,\"vram\":[{\"tier\":\"v\",\"free_bytes\":\"1G\"}]}"),
            "x.jsonl:1: vram[0].free_bytes: expected a non-negative integer, got \"1G\"");
  EXPECT_EQ(error_of("{\"t_ms\":0,\"vram\":[{\"free_bytes\":1}]}"),
            "x.jsonl:1: vram[0].tier: missing: each VRAM sample names its tier");
  EXPECT_EQ(error_of("{\"t_ms\":0,\"on_batery\":true}").substr(0, 32), "x.jsonl:1: on_batery: unknown ke");
  EXPECT_EQ(error_of("{\"t_ms\":0,\"on_battery\":1}"),
            "x.jsonl:1: on_battery: expected true or false, got 1");
  EXPECT_EQ(error_of("{\"t_ms\":0,\"swap_used_bytes\":{\"z\":1.5}}"),
            "x.jsonl:1: swap_used_bytes.z: expected a non-negative integer, got 1.5");
}

TEST(PolicyTraces, ContentionStartingAndEnding) {
  const auto actions = simulate(load("contention.jsonl"), PolicySpec{});
  EXPECT_EQ(brief(actions), (V{"00:02:10.000 evacuate foreign", "00:20:00.000 promote cooldown"}));
  ASSERT_FALSE(actions.empty());
  EXPECT_EQ(actions[0].why, "other processes use 2560 MiB of VRAM, past 2048 MiB");
}

TEST(PolicyTraces, BurstsAreBoundedPerHour) {
  const auto actions = simulate(load("bursts.jsonl"), PolicySpec{});
  EXPECT_EQ(brief(actions), (V{
                                "00:10:00.000 evacuate foreign",
                                "00:16:00.000 promote cooldown",
                                "00:20:00.000 evacuate foreign",
                                "01:16:00.000 promote cooldown",
                                "01:20:00.000 evacuate foreign",
                                "01:26:00.000 promote cooldown",
                                "01:30:00.000 evacuate foreign",
                            }));
}

TEST(PolicyTraces, PressureBuildingSlowly) {
  const auto actions = simulate(load("slow-pressure.jsonl"), PolicySpec{});
  EXPECT_EQ(brief(actions), (V{"00:40:00.000 evacuate latency", "01:19:00.000 promote cooldown"}));
  ASSERT_FALSE(actions.empty());
  EXPECT_EQ(actions[0].why,
            "p99 latency 4200 us is over the budget 2000 us while io pressure is 20.0% (threshold 20.0%)");
}

TEST(PolicyTraces, NoisySignalDoesNotFlap) {
  const auto trace = load("noisy.jsonl");
  // The fixture really is noisy: io pressure crosses the 20% threshold often.
  int crossings = 0;
  for (std::size_t i = 1; i < trace.size(); ++i)
    crossings += (trace[i - 1].io.some_avg10 >= 20) != (trace[i].io.some_avg10 >= 20);
  EXPECT_GE(crossings, 20);
  const auto actions = simulate(trace, PolicySpec{});
  ASSERT_EQ(actions.size(), 2u) << ::testing::PrintToString(brief(actions));
  EXPECT_EQ(actions[0].kind, ActionKind::evacuate);
  EXPECT_EQ(actions[0].rule, "latency");
  EXPECT_EQ(brief(actions)[1], "00:45:00.000 promote cooldown");  // quiet from 40 min
}

TEST(PolicyTraces, LaptopUnpluggedAndPluggedBack) {
  const auto trace = load("laptop-battery.jsonl");
  EXPECT_EQ(brief(simulate(trace, PolicySpec{})),
            (V{"00:10:00.000 evacuate on_battery", "00:45:00.000 promote cooldown"}));
  PolicySpec server;
  server.on_battery = false;
  EXPECT_TRUE(simulate(trace, server).empty());
}

TEST(PolicyTraces, NamedServiceStallsWhileTheTierIsSlow) {
  const auto trace = load("cgroup-stall.jsonl");
  ASSERT_EQ(trace.size(), 360u);
  // The fixture holds what the rule needs: the named cgroups, and io
  // pressure that never reaches the latency rule's threshold.
  for (const auto& s : trace) {
    ASSERT_EQ(s.cgroup_memory.size(), 2u) << s.time_ms;
    ASSERT_LT(s.io.some_avg10, PolicySpec{}.io_pressure_percent) << s.time_ms;
  }
  const auto actions = simulate(trace, PolicySpec{});
  // Not at 100 s (a stall while the tier is fast); at 460 s, when the
  // stall reaches 10% with p99 3500 us; back once the stall stayed <= 8%
  // for 300 s (the last 9% sample is at 1470 s).
  EXPECT_EQ(brief(actions), (V{"00:07:40.000 evacuate cgroup", "00:29:40.000 promote cooldown"}));
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].why,
            "postgresql.service stalls on memory (full 10.0%, threshold 10.0%) while the tier's p99 latency "
            "3500 us is over the budget 2000 us");
  EXPECT_EQ(actions[1].why,
            "every rule clear for 300 s (hysteresis 20%): free VRAM 19968 MiB, others 512 MiB, io pressure "
            "2.0%, postgresql.service memory full 1.0%, on AC");
  // The swap-in arm alone (latency budget off): from 500 s, when 3000
  // pages/s start coming back.
  PolicySpec swap_in;
  swap_in.latency_p99_us = 0;
  swap_in.swap_in_pages_per_s = 2560;
  EXPECT_EQ(brief(simulate(trace, swap_in)),
            (V{"00:08:20.000 evacuate cgroup", "00:29:40.000 promote cooldown"}));
  // The rule off: nothing at all (io pressure is low, VRAM is free).
  PolicySpec off;
  off.cgroup_full_percent = 0;
  EXPECT_TRUE(simulate(trace, off).empty());
  // Without the cgroups (a config that names none): nothing either.
  auto unnamed = trace;
  for (auto& s : unnamed) s.cgroup_memory.clear();
  EXPECT_TRUE(simulate(unnamed, PolicySpec{}).empty());
}

}  // namespace
}  // namespace tierswap::policy

namespace tierswap::policy {
namespace {

// What `tierswapd --record` writes reads back as the same snapshot.
TEST(TraceWriter, LineReadsBackToTheSameSnapshot) {
  Snapshot s;
  s.time_ms = 4000;
  s.memory = {12.5, 3.25};
  s.io = {0.07, 0};
  s.mem_available_bytes = 8ULL << 30;
  s.mem_total_bytes = 16ULL << 30;
  s.swap_used_bytes = {{"fast", 1 << 20}, {"vram", 0}};
  s.vram.push_back({"vram", 512ULL << 20, 24ULL << 30, 3ULL << 30, 180, 4ULL << 30});
  s.on_battery = true;
  s.user_demote_running = true;
  const std::string line = format_trace_line(s);
  ASSERT_TRUE(line.ends_with("\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  auto back = parse_trace(line + format_trace_line(Snapshot{5000}), "recorded");
  ASSERT_FALSE(!back) << back.error().message;
  ASSERT_EQ(back->size(), 2u);
  const Snapshot& r = (*back)[0];
  EXPECT_EQ(r.time_ms, 4000u);
  EXPECT_DOUBLE_EQ(r.memory.some_avg10, 12.5);
  EXPECT_DOUBLE_EQ(r.memory.full_avg10, 3.25);
  EXPECT_DOUBLE_EQ(r.io.some_avg10, 0.07);
  EXPECT_EQ(r.mem_available_bytes, s.mem_available_bytes);
  EXPECT_EQ(r.mem_total_bytes, s.mem_total_bytes);
  EXPECT_EQ(r.swap_used_bytes, s.swap_used_bytes);
  ASSERT_EQ(r.vram.size(), 1u);
  EXPECT_EQ(r.vram[0].tier, "vram");
  EXPECT_EQ(r.vram[0].vram_free_bytes, 512ULL << 20);
  EXPECT_EQ(r.vram[0].vram_total_bytes, 24ULL << 30);
  EXPECT_EQ(r.vram[0].foreign_vram_bytes, 3ULL << 30);
  EXPECT_EQ(r.vram[0].p99_latency_us, 180u);
  EXPECT_EQ(r.vram[0].tier_size_bytes, 4ULL << 30);
  EXPECT_TRUE(r.on_battery);
  EXPECT_FALSE(r.reload_running);
  EXPECT_TRUE(r.user_demote_running);
  EXPECT_DOUBLE_EQ(r.swap_in_pages_per_s, 0);
  // The same decisions from the written trace as from the snapshots.
  std::vector<Snapshot> trace{s, s};
  trace[0].user_demote_running = trace[1].user_demote_running = false;
  trace[1].time_ms = 6000;
  std::string text;
  for (const auto& x : trace) text += format_trace_line(x);
  auto replay = parse_trace(text, "recorded");
  ASSERT_TRUE(replay);
  EXPECT_EQ(simulate(*replay, PolicySpec{}), simulate(trace, PolicySpec{}));
  EXPECT_FALSE(simulate(trace, PolicySpec{}).empty());
}

}  // namespace
}  // namespace tierswap::policy

namespace tierswap::policy {
namespace {

// Per-cgroup memory pressure (cgroups: in the config) is recorded and read
// back; a trace without it reads as before.
TEST(TraceWriter, CgroupMemoryPressureRoundTrips) {
  Snapshot s;
  s.time_ms = 2000;
  s.cgroup_memory = {{"postgresql.service", {12.5, 7.25}}, {"system.slice", {0.1, 0}}};
  const std::string line = format_trace_line(s);
  EXPECT_NE(line.find(R"("cgroup_memory":{"postgresql.service":{"full":7.25,"some":12.5})"),
            std::string::npos)
      << line;
  EXPECT_EQ(format_trace_line(Snapshot{}).find("cgroup_memory"), std::string::npos);
  auto back = parse_trace(line, "recorded");
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 1u);
  EXPECT_DOUBLE_EQ((*back)[0].cgroup_memory.at("postgresql.service").some_avg10, 12.5);
  EXPECT_DOUBLE_EQ((*back)[0].cgroup_memory.at("postgresql.service").full_avg10, 7.25);
  // A name written twice: the last whole object (the tree walk's reading).
  auto twice =
      parse_trace(R"({"t_ms":0,"cgroup_memory":{"a.slice":{"some":1,"full":2},"a.slice":{"some":3}}})", "t");
  ASSERT_TRUE(twice) << twice.error().message;
  EXPECT_DOUBLE_EQ((*twice)[0].cgroup_memory.at("a.slice").some_avg10, 3);
  EXPECT_DOUBLE_EQ((*twice)[0].cgroup_memory.at("a.slice").full_avg10, 0);
  // The machine's swap-in rate, an integer or not, through either reader.
  s.swap_in_pages_per_s = 2560.5;
  back = parse_trace(format_trace_line(s) + R"({"t_ms": 3000, "swap_in_pages_per_s": 7})" + "\n", "recorded");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_DOUBLE_EQ((*back)[0].swap_in_pages_per_s, 2560.5);
  EXPECT_DOUBLE_EQ((*back)[1].swap_in_pages_per_s, 7);
  auto neg = parse_trace(R"({"t_ms": 0, "swap_in_pages_per_s": -1})", "t");
  ASSERT_FALSE(neg);
  EXPECT_EQ(neg.error().message, "t:1: swap_in_pages_per_s: expected a non-negative number, got -1");
  auto bad = parse_trace(R"({"t_ms": 0, "cgroup_memory": {"x.slice": {"some": 101}}})", "t");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("cgroup_memory.x.slice"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace tierswap::policy
