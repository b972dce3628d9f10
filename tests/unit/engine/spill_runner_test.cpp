// Evacuation of a vram tier with a spill store through its exporter's control
// channel, on a fake root where the tier "gpu" was set up by an earlier
// tierswapd (re-adopted), with a scripted control channel in place of
// tierswap-nbd: evacuate/demote/promote go over the channel (never swapoff),
// share the one busy state, name their caller, send progress and end
// evacuated/active in the journal and the status; the exporter's figures
// reach the status and the policy snapshot (p99 -> the latency rule); a tier
// without a spill keeps the swapoff path. The same against a real exporter
// is tests/nbd/nbd_control_socket_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "daemon/engine.hpp"
#include "daemon/journal.hpp"
#include "daemon/operation_runner.hpp"
#include "daemon/policy_loop.hpp"
#include "daemon/status_observer.hpp"
#include "fake_root.hpp"
#include "gate_kernel.hpp"
#include "tests/support/recording_kernel.hpp"
#include "vram_fixture.hpp"

namespace tierswap {
namespace {

namespace fsys = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint64_t kSize = test::kGpuTierBytes;
constexpr std::uint64_t kChunk = 16ULL << 20;

// tierswap-nbd as a script: 4 chunks of 16 MiB; each progress() call of a
// running move moves one chunk, unless held.
class FakeControl final : public TierControl {
 public:
  Result<MoveStatus> evacuate() override { return start("evacuate"); }
  Result<MoveStatus> promote() override { return start("promote"); }
  Result<MoveStatus> progress() override {
    std::unique_lock lk(mu);
    ++progress_calls;
    if (fail_progress) return fail(ETIMEDOUT, "no answer within 5000 ms");
    if (job.running && !held) {
      if (job.job == "evacuate")
        ++spilled;
      else
        --spilled;
      ++job.chunks_done;
      job.bytes_moved += kChunk;
      if (job.chunks_done == job.chunks_total) job.running = false;
    }
    return job;
  }
  Result<MoveStatus> cancel() override {
    std::lock_guard lk(mu);
    ++cancels;
    job.running = false;
    job.cancelled = true;
    return job;
  }
  Result<TierFigures> figures(int) override {
    std::lock_guard lk(mu);
    if (fail_figures) return fail(ECONNREFUSED, "vram tier \"gpu\": connect: Connection refused");
    TierFigures f;
    f.requests = 1000;
    f.read_bytes = 4096 * 600;
    f.write_bytes = 4096 * 400;
    f.queue_depth = 3;
    f.latency_p50_us = 21.5;
    f.latency_p99_us = 2500;
    f.size_bytes = kSize;
    f.chunk_bytes = kChunk;
    f.chunks_total = 4;
    f.chunks_spilled = spilled;
    f.chunks_resident = 4 - spilled;
    f.resident_bytes = (4 - spilled) * kChunk;
    f.spill = "lz4";
    f.spill_ratio = 2.5;
    return f;
  }

  std::mutex mu;
  MoveStatus job;
  std::uint64_t spilled = 0;
  bool held = false, fail_progress = false, fail_figures = false;
  std::string refuse;  // evacuate/promote answer {"ok": false} with this
  int starts = 0, cancels = 0, progress_calls = 0;

 private:
  Result<MoveStatus> start(const std::string& what) {
    std::lock_guard lk(mu);
    if (!refuse.empty()) return fail(0, "tierswap-nbd control channel: " + what + ": " + refuse);
    ++starts;
    job = MoveStatus{};
    job.job = what;
    job.running = true;
    job.chunks_total = what == "evacuate" ? 4 - spilled : spilled;
    return job;
  }
};

OwnedTier gpu_tier(const std::string& spill) {
  OwnedTier t = test::journaled_gpu_tier();
  t.spill = spill;
  t.control_socket = "/run/tierswap/exporter-gpu/control";
  return t;
}

class SpillRunner : public ::testing::Test {
 protected:
  void start(const std::string& spill = "lz4") {
    root_ = std::make_unique<test::TempRoot>("02-zram-file-zswap");
    test::attach_gpu_tier(*root_);
    test::spit(path("etc/tierswap.yaml"),
               "tiers:\n  - name: gpu\n    kind: vram\n    size: 64M\n"
               "    store: host\n    connections: 2\n    priority: 50\n" +
                   (spill.empty() ? std::string() : "    spill: {kind: " + spill + "}\n"));
    Journal j;
    j.source = "/etc/tierswap.yaml";
    j.tiers = {gpu_tier(spill)};
    ASSERT_TRUE(save_journal(HostFs(root_->str()), j));
    EngineOptions eo;
    eo.root = root_->str();
    eo.config = path("etc/tierswap.yaml").string();
    eo.make_kernel = swap::recording_kernel_on;
    eo.warn = [&](const std::string& l) { log_.push_back(l); };
    engine_ = std::make_unique<Engine>(eo);
    ASSERT_TRUE(engine_->start()) << ::testing::PrintToString(log_);
    sink_.set(events_.make());
    RunnerOptions ro{5ms,
                     [&](const std::string& l) { log_.push_back(l); },
                     {},
                     [this](const OwnedTier& t) -> std::shared_ptr<TierControl> {
                       return t.name == "gpu" ? control_ : nullptr;
                     }};
    runner_ = std::make_unique<OperationRunner>(*engine_, sink_, ro);
  }
  void TearDown() override {
    if (runner_) runner_->wait_idle();
  }
  fsys::path path(const std::string& rel) const { return root_->path() / rel; }
  const swap::RecordingKernel& kernel() { return dynamic_cast<swap::RecordingKernel&>(engine_->kernel()); }
  std::vector<std::string> of(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& l : events_.get())
      if (l.starts_with(prefix)) out.push_back(l);
    return out;
  }
  bool journal_evacuated() {
    auto j = load_journal(HostFs(root_->str()));
    return j && j->find_tier("gpu") && j->find_tier("gpu")->evacuated;
  }
  std::string joined() { return ::testing::PrintToString(events_.get()) + ::testing::PrintToString(log_); }

  std::unique_ptr<test::TempRoot> root_;
  std::shared_ptr<FakeControl> control_ = std::make_shared<FakeControl>();
  std::unique_ptr<Engine> engine_;
  test::Events events_;
  EventSink sink_;
  std::unique_ptr<OperationRunner> runner_;
  std::vector<std::string> log_;
};

TEST_F(SpillRunner, EvacuateGoesOverTheControlChannelNotSwapoffAndEndsEvacuated) {
  start();
  ASSERT_TRUE(runner_->evacuate("gpu", Caller::policy("reserve", "free VRAM 512 MiB < reserve 1.0 GiB")));
  runner_->wait_idle();
  EXPECT_EQ(control_->starts, 1);
  EXPECT_TRUE(kernel().calls().empty()) << "no swapoff: the swap area stays up";
  EXPECT_EQ(of("state "), (std::vector<std::string>{"state gpu evacuating", "state gpu evacuated"}))
      << joined();
  const auto progress = of("progress ");
  ASSERT_GE(progress.size(), 3u) << joined();
  EXPECT_EQ(progress.front(), "progress gpu 0/67108864");
  EXPECT_EQ(progress.back(), "progress gpu 67108864/67108864");
  const auto actions = of("action evacuate: ");
  ASSERT_EQ(actions.size(), 2u) << joined();
  EXPECT_NE(
      actions[0].find("tier gpu (/dev/nbd0): evacuate requested by daemon policy rule \"reserve\" (free VRAM "
                      "512 MiB < reserve 1.0 GiB); moving 64 MiB of VRAM to its lz4 spill store while the "
                      "swap area stays up"),
      std::string::npos)
      << actions[0];
  EXPECT_NE(actions[1].find("tier gpu evacuated: 64 MiB moved to its lz4 spill store in"), std::string::npos)
      << actions[1];
  EXPECT_NE(actions[1].find("(evacuate requested by daemon policy rule \"reserve\")"), std::string::npos);
  EXPECT_TRUE(journal_evacuated());

  // Again: refused, naming where the blocks are and the way back.
  auto again = runner_->evacuate("gpu", Caller::dbus(1000));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::busy);
  EXPECT_NE(
      again.error().message.find("evacuated already: its blocks are in its lz4 spill store (tierswapctl "
                                 "promote gpu"),
      std::string::npos)
      << again.error().message;
}

TEST_F(SpillRunner, AMoveHoldsTheBusyStateNamingItAndItsCaller) {
  start();
  control_->held = true;
  ASSERT_TRUE(runner_->demote("gpu", Caller::dbus(1000)));
  const auto r = runner_->running();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, "demote");
  EXPECT_TRUE(r->spill);
  const std::string busy = "a demote of tier \"gpu\" (asked by uid 1000 over D-Bus) is running";
  for (const auto& x : {runner_->evacuate("gpu", Caller::policy("reserve")),
                        runner_->promote("gpu", Caller::dbus(0)), runner_->demote("fast", Caller::dbus(0))}) {
    ASSERT_FALSE(x);
    EXPECT_EQ(x.error().code, EBUSY);
    EXPECT_NE(x.error().message.find(busy), std::string::npos) << x.error().message;
  }
  auto rl = runner_->reload(Caller::signal("SIGHUP"));
  ASSERT_FALSE(rl);
  EXPECT_NE(rl.error().message.find(busy), std::string::npos);
  {
    std::lock_guard lk(control_->mu);
    control_->held = false;
  }
  runner_->wait_idle();
  EXPECT_EQ(of("state ").back(), "state gpu evacuated");
  EXPECT_NE(of("action demote: ").back().find("(demote requested by uid 1000 over D-Bus)"),
            std::string::npos);
}

TEST_F(SpillRunner, PromoteMovesTheBlocksBackAndTheTierIsActiveAgain) {
  start();
  ASSERT_TRUE(runner_->evacuate("gpu", Caller::policy("reserve")));
  runner_->wait_idle();
  ASSERT_TRUE(journal_evacuated());
  ASSERT_TRUE(runner_->promote("gpu", Caller::policy("cooldown")));
  runner_->wait_idle();
  EXPECT_EQ(control_->starts, 2);
  EXPECT_EQ(control_->spilled, 0u);
  EXPECT_EQ(of("state ").back(), "state gpu active") << joined();
  EXPECT_NE(of("action promote: ")
                .back()
                .find("tier gpu promoted: 64 MiB moved back into VRAM from its lz4 spill "
                      "store in"),
            std::string::npos)
      << joined();
  EXPECT_FALSE(journal_evacuated());
  EXPECT_TRUE(kernel().calls().empty()) << "no swapon: the area never went off";
  auto again = runner_->promote("gpu", Caller::dbus(0));
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("is in VRAM already: nothing to promote"), std::string::npos);
}

TEST_F(SpillRunner, AnExporterThatRefusesIsNamedAndNothingStaysBusy) {
  start();
  control_->refuse = "an evacuate is running already";
  auto r = runner_->evacuate("gpu", Caller::policy("reserve"));
  ASSERT_FALSE(r);
  EXPECT_NE(
      r.error().message.find("tier \"gpu\": evacuate: tierswap-nbd control channel: evacuate: an evacuate is "
                             "running already"),
      std::string::npos)
      << r.error().message;
  EXPECT_FALSE(runner_->running());
  EXPECT_TRUE(of("state ").empty());
}

TEST_F(SpillRunner, AbortCancelsTheMoveAndTheTierStaysUpWithWhatMoved) {
  start();
  control_->held = true;
  ASSERT_TRUE(runner_->evacuate("gpu", Caller::policy("reserve")));
  {
    std::lock_guard lk(control_->mu);
    control_->held = false;
    control_->spilled = 1;  // one chunk out by the time the cancel lands
    control_->job.chunks_done = 1;
    control_->job.bytes_moved = kChunk;
    control_->held = true;
  }
  EXPECT_TRUE(runner_->abort("SIGTERM"));
  runner_->wait_idle();
  EXPECT_EQ(control_->cancels, 1);
  EXPECT_EQ(of("state ").back(), "state gpu active") << joined();
  const auto end = of("action evacuate: ").back();
  EXPECT_NE(
      end.find(
          "tier gpu stays in VRAM: its evacuation to the lz4 spill store stopped: aborted (SIGTERM); 1 of 4 "
          "chunks are in the spill store, the rest in VRAM; the swap area stayed up and no page was lost"),
      std::string::npos)
      << end;
  EXPECT_FALSE(journal_evacuated());
}

TEST_F(SpillRunner, AChannelThatStopsAnsweringEndsTheMoveByWhereTheBlocksAre) {
  start();
  control_->fail_progress = true;
  ASSERT_TRUE(runner_->evacuate("gpu", Caller::policy("reserve")));
  runner_->wait_idle();
  EXPECT_EQ(control_->progress_calls, 5);
  EXPECT_EQ(of("state ").back(), "state gpu active");
  EXPECT_NE(of("action evacuate: ").back().find("its exporter stopped answering: no answer within 5000 ms"),
            std::string::npos)
      << joined();
}

// No spill store: the swapoff path and its room rule (nothing else can take
// the tier's 29 MiB here, so it is refused with the numbers).
TEST_F(SpillRunner, WithoutASpillStoreTheSwapoffPathStays) {
  start("");
  auto r = runner_->evacuate("gpu", Caller::policy("reserve"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::not_enough_memory) << r.error().message;
  EXPECT_NE(r.error().message.find("tier gpu holds 29 MiB"), std::string::npos) << r.error().message;
  EXPECT_EQ(control_->starts, 0);
}

// The observer: the exporter's figures in the status, its state from where
// the blocks are, the p99 in the policy's snapshot (the latency rule).
TEST_F(SpillRunner, FiguresReachTheStatusAndThePolicySnapshot) {
  start();
  ObserverOptions oo;
  oo.control_for = [this](const OwnedTier&) -> std::shared_ptr<TierControl> { return control_; };
  oo.providers.vram = [] {
    return std::vector<policy::VramTierSample>{
        {.tier = "gpu", .vram_free_bytes = 8ULL << 30, .vram_total_bytes = 24ULL << 30}};
  };
  std::vector<std::string> warned;
  oo.warn = [&](const std::string& l) { warned.push_back(l); };
  StatusObserver observer(*engine_, oo);
  auto o = observer.observe({});
  auto gpu = std::find_if(o.status.tiers.begin(), o.status.tiers.end(),
                          [](const TierStatus& t) { return t.name == "gpu"; });
  ASSERT_NE(gpu, o.status.tiers.end());
  EXPECT_EQ(gpu->state, TierState::active);
  EXPECT_TRUE(gpu->exporter_live);
  EXPECT_EQ(gpu->exporter_requests, 1000u);
  EXPECT_EQ(gpu->exporter_read_bytes, 4096u * 600);
  EXPECT_EQ(gpu->exporter_queue_depth, 3u);
  EXPECT_DOUBLE_EQ(gpu->exporter_latency_p50_us, 21.5);
  EXPECT_EQ(gpu->latency_p99_us, 2500u);
  EXPECT_EQ(gpu->resident_bytes, kSize);
  EXPECT_EQ(gpu->spill, "lz4");
  ASSERT_EQ(o.snapshot.vram.size(), 1u);
  EXPECT_EQ(o.snapshot.vram[0].p99_latency_us, 2500u);

  // The latency rule is live: p99 2500 us over the 2000 us budget while io
  // pressure is high evacuates.
  o.snapshot.io.some_avg10 = 50;
  policy::PolicySpec spec;
  spec.foreign_vram_bytes = 0;
  auto d = policy::decide(o.snapshot, {}, spec);
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(d.actions[0].rule, "latency");

  // Moving: evacuating; all out: evacuated, VRAM freed.
  o = observer.observe(Activity{.moving_tier = "gpu"});
  EXPECT_EQ(
      std::find_if(o.status.tiers.begin(), o.status.tiers.end(), [](auto& t) { return t.name == "gpu"; })
          ->state,
      TierState::evacuating);
  control_->spilled = 4;
  o = observer.observe({});
  gpu = std::find_if(o.status.tiers.begin(), o.status.tiers.end(), [](auto& t) { return t.name == "gpu"; });
  EXPECT_EQ(gpu->state, TierState::evacuated);
  EXPECT_EQ(gpu->resident_bytes, 0u);
  EXPECT_EQ(gpu->spilled_bytes, kSize);

  // A channel that fails is said once, and the journal's word is used.
  control_->fail_figures = true;
  ASSERT_TRUE(engine_->mark_evacuated("gpu", true));
  for (int i = 0; i < 3; ++i) o = observer.observe({});
  gpu = std::find_if(o.status.tiers.begin(), o.status.tiers.end(), [](auto& t) { return t.name == "gpu"; });
  EXPECT_FALSE(gpu->exporter_live);
  EXPECT_EQ(gpu->state, TierState::evacuated);
  ASSERT_EQ(warned.size(), 1u) << ::testing::PrintToString(warned);
  EXPECT_NE(warned[0].find("tier \"gpu\": no figures from its exporter"), std::string::npos) << warned[0];
  EXPECT_EQ(o.snapshot.vram[0].p99_latency_us, 0u);
}

// The policy leaves a tier a person evacuated alone, and brings back one
// it evacuated itself.
TEST_F(SpillRunner, ThePolicyLeavesAPersonsEvacuationAlone) {
  start();
  ASSERT_TRUE(runner_->demote("gpu", Caller::dbus(1000)));
  runner_->wait_idle();
  ObserverOptions oo;
  oo.control_for = [this](const OwnedTier&) -> std::shared_ptr<TierControl> { return control_; };
  oo.providers.vram = [] {
    return std::vector<policy::VramTierSample>{
        {.tier = "gpu", .vram_free_bytes = 20ULL << 30, .vram_total_bytes = 24ULL << 30}};
  };
  StatusObserver observer(*engine_, oo);
  PolicyLoop loop(*runner_, sink_);
  policy::PolicySpec spec;
  spec.cooldown_ms = 0;
  for (int i = 0; i < 3; ++i) loop.decide(observer.observe({}), spec);
  runner_->wait_idle();
  EXPECT_EQ(control_->starts, 1) << "no promote of a tier a person evacuated";
  EXPECT_TRUE(loop.counters().empty());
}

}  // namespace
}  // namespace tierswap

namespace tierswap {
namespace {

// memory.pressure of the cgroups the config names, from a fake cgroup v2
// tree: in the status and the snapshot by the name as written; a cgroup
// without the file (no PSI, or gone) is left out, a malformed one too.
TEST(CgroupPressure, TheConfigsCgroupsReachTheStatusAndTheSnapshot) {
  test::TempRoot root("05-cgroup-limits");
  const auto cg = root.path() / "sys/fs/cgroup";
  test::spit(cg / "system.slice/postgresql.service/memory.pressure",
             "some avg10=12.50 avg60=3.00 avg300=1.00 total=4242\nfull avg10=7.25 avg60=1.00 avg300=0.50 "
             "total=99\n");
  test::spit(
      cg / "system.slice/memory.pressure",
      "some avg10=0.10 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  test::spit(cg / "user.slice/memory.pressure", "not psi\n");
  EngineOptions eo;
  eo.root = root.str();
  eo.config = (root.path() / "etc/tierswap.yaml").string();
  eo.make_kernel = swap::recording_kernel_on;
  Engine engine(eo);
  ASSERT_TRUE(engine.start());
  StatusObserver observer(engine, {});
  const auto o = observer.observe({});
  ASSERT_EQ(o.status.cgroup_pressure.size(), 2u) << ::testing::PrintToString(engine.configured_cgroups());
  const auto& pg = o.status.cgroup_pressure[0];
  EXPECT_EQ(pg.cgroup, "postgresql.service");
  EXPECT_DOUBLE_EQ(pg.memory.some.avg10, 12.5);
  EXPECT_DOUBLE_EQ(pg.memory.full.avg10, 7.25);
  EXPECT_EQ(pg.memory.some.total_us, 4242u);
  EXPECT_EQ(o.status.cgroup_pressure[1].cgroup, "system.slice");
  ASSERT_EQ(o.snapshot.cgroup_memory.size(), 2u);
  EXPECT_DOUBLE_EQ(o.snapshot.cgroup_memory.at("postgresql.service").some_avg10, 12.5);
  EXPECT_DOUBLE_EQ(o.snapshot.cgroup_memory.at("postgresql.service").full_avg10, 7.25);
  EXPECT_FALSE(o.snapshot.cgroup_memory.contains("user.slice"));
  ASSERT_TRUE(engine.stop());
}

}  // namespace
}  // namespace tierswap
