// The exporter's control socket (--control-socket) and the daemon's side of it
// against a real tierswap-nbd (host store, lz4 spill):
//   - the socket is 0600 in a 0700 directory, answers root or its own user,
//     and is removed when the exporter exits; a link in its place is refused;
//   - ExporterChannel checks that the process answering is the recorded pid;
//   - a daemon that never had the socketpair (a restart: the engine starts
//     from a journal naming this exporter, which it re-adopts) reconnects
//     there, and its operation runner evacuates the tier to the spill store
//     and promotes it back over that channel while libnbd clients do
//     checksummed I/O; the status observer shows the exporter's figures and
//     the tier evacuated, then active; no swapoff is ever called.
// The nbd driver is not on these machines, so /dev/nbd0 and /proc/swaps are a
// fake root's; the exporter, its socket and its data path are real.
#include <gtest/gtest.h>
#include <libnbd.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "backends/vram/exporter_control.hpp"
#include "daemon/engine.hpp"
#include "daemon/journal.hpp"
#include "daemon/operation_runner.hpp"
#include "daemon/status_observer.hpp"
#include "daemon/tier_controls.hpp"
#include "tests/nbd/nbd_test_util.hpp"
#include "tests/support/recording_kernel.hpp"
#include "tests/unit/engine/fake_root.hpp"
#include "tests/unit/engine/gate_kernel.hpp"

namespace tierswap {
namespace {

namespace fsys = std::filesystem;
using nbdtest::Exporter;

constexpr std::uint64_t kSize = 16ULL << 20;

std::string read_all(const fsys::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

bool wait_for(const std::function<bool()>& f, int ms = 10000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

TEST(ControlSocket, IsPrivateAnswersStatsAndIsRemovedAtExit) {
  Exporter ex;
  fsys::create_directories(ex.dir.path + "/run");  // tierswapd's state directory
  const std::string dir = ex.dir.path + "/run/exporter-gpu";
  const std::string sock = dir + "/control";
  ASSERT_TRUE(ex.start({"--chunk", "1M", "--spill", "lz4", "--control-socket", sock}, "host", "16M"))
      << ex.log();
  ASSERT_TRUE(wait_for([&] { return fsys::exists(sock); })) << ex.log();
  struct stat st {};
  ASSERT_EQ(::lstat(sock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  vram::ExporterChannel channel("vram tier \"gpu\"", sock, ex.pid);
  auto f = channel.figures(2000);
  ASSERT_TRUE(f) << f.error().describe();
  EXPECT_EQ(f->size_bytes, kSize);
  EXPECT_EQ(f->chunks_total, 16u);
  EXPECT_EQ(f->resident_bytes, kSize);
  EXPECT_EQ(f->spill, "lz4");
  // Several connections at once (the runner's and the observer's).
  vram::ExporterChannel second("vram tier \"gpu\"", sock, ex.pid);
  EXPECT_TRUE(second.figures(2000));

  // The tick's way, on a connection of its own: one request at a time,
  // the answer read when its fd says so, never waited for.
  auto sent = channel.request_figures();
  ASSERT_TRUE(sent) << sent.error().describe();
  EXPECT_TRUE(*sent);
  const auto watch = channel.figures_watch();
  ASSERT_GE(watch.fd, 0);
  EXPECT_FALSE(*channel.request_figures()) << "the first is still unanswered";
  pollfd p{watch.fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  auto taken = channel.take_figures();
  ASSERT_TRUE(taken) << taken.error().describe();
  ASSERT_TRUE(*taken);
  EXPECT_EQ((*taken)->size_bytes, kSize);
  EXPECT_EQ((*taken)->chunks_total, 16u);
  auto nothing = channel.take_figures();
  ASSERT_TRUE(nothing);
  EXPECT_FALSE(*nothing) << "no answer without a request";
  EXPECT_TRUE(*channel.request_figures()) << "answered: the next request goes out";

  // Another pid than the journal's: not used.
  vram::ExporterChannel wrong("vram tier \"gpu\"", sock, ex.pid + 1);
  auto w = wrong.figures(2000);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, EPERM);
  EXPECT_NE(w.error().message.find("answered by pid " + std::to_string(ex.pid) + ", not by the exporter pid"),
            std::string::npos)
      << w.error().message;

  ASSERT_EQ(::kill(ex.pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(ex.pid, &status, 0), ex.pid);
  ex.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ex.log();
  EXPECT_FALSE(fsys::exists(sock)) << "the socket goes with its exporter";
  auto gone = channel.figures(500);
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message.find("vram tier \"gpu\""), std::string::npos) << gone.error().message;
  // The figures connection ends too, and the next request fails at once.
  auto ended = channel.take_figures();
  ASSERT_FALSE(ended);
  EXPECT_NE(ended.error().message.find("vram tier \"gpu\""), std::string::npos) << ended.error().message;
  EXPECT_LT(channel.figures_watch().fd, 0);
  EXPECT_FALSE(channel.request_figures());
}

TEST(ControlSocket, ALinkInPlaceOfItsDirectoryIsRefused) {
  Exporter ex;
  const std::string real = ex.dir.path + "/elsewhere";
  fsys::create_directories(real);
  fsys::permissions(real, fsys::perms::owner_all);
  fsys::create_directory_symlink(real, ex.dir.path + "/exporter-gpu");
  (void)ex.start({"--control-socket", ex.dir.path + "/exporter-gpu/control"}, "host", "16M");
  // It exits (start() may have reaped it already).
  int status = 0;
  if (ex.pid > 0) {
    ASSERT_TRUE(wait_for([&] { return ::waitpid(ex.pid, &status, WNOHANG) == ex.pid; })) << ex.log();
    ex.pid = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << ex.log();
  }
  EXPECT_NE(ex.log().find("is a symbolic link: refusing to follow it"), std::string::npos) << ex.log();
  EXPECT_FALSE(fsys::exists(real + "/control"));
}

// A fake root where "gpu" is a vram tier set up by an earlier tierswapd and
// served by the real exporter `ex`, whose control socket is where tierswap
// puts it under that root.
struct Machine {
  test::TempRoot root{"02-zram-file-zswap"};
  Exporter ex;
  std::vector<std::string> log;

  fsys::path path(const std::string& rel) const { return root.path() / rel; }
  bool start() {
    const fsys::path sock = path("run/tierswap/exporter-gpu/control");
    fsys::create_directories(path("run/tierswap"));
    fsys::permissions(path("run/tierswap"), fsys::perms::owner_all);
    if (!ex.start(
            {"--chunk", "1M", "--spill", "lz4", "--control-socket", sock.string(), "--connections", "4"},
            "host", std::to_string(kSize)))
      return false;
    if (!wait_for([&] { return fsys::exists(sock); })) return false;
    fsys::create_directories(path("sys/module/nbd"));
    // The exporter's /proc/PID/stat as the kernel has it: re-adoption checks
    // its name and start time.
    test::spit(path("proc/" + std::to_string(ex.pid) + "/stat"),
               read_all("/proc/" + std::to_string(ex.pid) + "/stat"));
    test::spit(path("sys/block/nbd0/pid"), "1234\n");
    test::spit(path("sys/block/nbd0/size"), std::to_string(kSize / 512) + "\n");
    test::spit(path("sys/block/nbd0/backend"), "tierswap-gpu\n");
    test::spit(path("dev/nbd0"), "");
    test::spit(path("proc/swaps"),
               "Filename\tType\tSize\tUsed\tPriority\n/dev/nbd0\tpartition\t16380\t8000\t50\n");
    test::spit(path("etc/tierswap.yaml"),
               "tiers:\n  - name: gpu\n    kind: vram\n    size: 16M\n    store: host\n    connections: 4\n"
               "    priority: 50\n    spill: {kind: lz4}\n");
    std::string stat = read_all("/proc/" + std::to_string(ex.pid) + "/stat");
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    std::uint64_t start_time = 0;
    for (int i = 3; i <= 22 && in >> field; ++i)
      if (i == 22) start_time = std::stoull(field);
    OwnedTier t{.name = "gpu",
                .kind = "vram",
                .device = "nbd0",
                .swap_path = "/dev/nbd0",
                .active = true,
                .priority = 50,
                .size = kSize};
    t.exporter_pid = ex.pid;
    t.exporter_start = start_time;
    t.store = "host";
    t.backend = "tierswap-gpu";
    t.connections = 4;
    t.spill = "lz4";
    t.control_socket = "/run/tierswap/exporter-gpu/control";
    Journal j;
    j.source = "/etc/tierswap.yaml";
    j.tiers = {t};
    return save_journal(HostFs(root.str()), j).has_value();
  }
  EngineOptions engine_options() {
    EngineOptions eo;
    eo.root = root.str();
    eo.config = path("etc/tierswap.yaml").string();
    eo.make_kernel = swap::recording_kernel_on;
    eo.info = eo.warn = [this](const std::string& l) { log.push_back(l); };
    return eo;
  }
};

const TierStatus* tier_of(const Status& s, const std::string& name) {
  for (const auto& t : s.tiers)
    if (t.name == name) return &t;
  return nullptr;
}

// A reading with the exporter's answer to a request of its own: a reading
// that polls sends the request and never waits for it (the daemon's loop
// takes the answer when it arrives); here the test waits for it.
Status answered(StatusObserver& observer) {
  (void)observer.observe({});
  for (const auto& [tier, w] : observer.figures_watches()) {
    pollfd p{w.fd, POLLIN, 0};
    if (w.fd >= 0 && ::poll(&p, 1, 5000) == 1) observer.take_ready(tier, w.generation);
  }
  return observer.observe({.poll_figures = false}).status;
}

TEST(ControlSocket, ARestartedDaemonReconnectsAndEvacuatesUnderIoAndPromotesBack) {
  Machine m;
  ASSERT_TRUE(m.start()) << m.ex.log();
  Engine engine(m.engine_options());
  ASSERT_TRUE(engine.start()) << ::testing::PrintToString(m.log);
  ASSERT_TRUE(std::any_of(m.log.begin(), m.log.end(), [](const std::string& l) {
    return l.find("re-adopted") != std::string::npos;
  })) << ::testing::PrintToString(m.log);

  TierControls controls(engine.fs());  // the vram kind's own channel
  test::Events events;
  EventSink sink;
  sink.set(events.make());
  RunnerOptions ro{
      std::chrono::milliseconds(20), {}, {}, [&](const OwnedTier& t) { return controls.get(t); }};
  OperationRunner runner(engine, sink, ro);
  ObserverOptions oo;
  oo.control_for = [&](const OwnedTier& t) { return controls.get(t); };
  StatusObserver observer(engine, oo);

  // Checksummed I/O on two connections all along.
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, done{0};
  auto io = [&](unsigned id) {
    nbd_handle* h = nbd_create();
    if (nbd_connect_unix(h, m.ex.socket.c_str()) != 0) {
      bad++;
      nbd_close(h);
      return;
    }
    char buf[4096], got[4096];
    for (std::uint64_t gen = 1; !stop; ++gen) {
      for (std::uint64_t p = id; p < kSize / 4096 && !stop; p += 2 * 7) {
        std::memset(buf, static_cast<int>((p * 31 + gen) & 0xff), sizeof buf);
        std::memcpy(buf, &gen, sizeof gen);
        if (nbd_pwrite(h, buf, sizeof buf, p * 4096, 0) != 0 ||
            nbd_pread(h, got, sizeof got, p * 4096, 0) != 0 || std::memcmp(buf, got, sizeof buf) != 0)
          bad++;
        done++;
      }
    }
    nbd_shutdown(h, 0);
    nbd_close(h);
  };
  std::thread a(io, 0), b(io, 1);
  ASSERT_TRUE(wait_for([&] { return done > 50; }));

  auto before = answered(observer);
  const TierStatus* gpu = tier_of(before, "gpu");
  ASSERT_NE(gpu, nullptr);
  ASSERT_TRUE(gpu->exporter_live) << ::testing::PrintToString(m.log);
  EXPECT_EQ(gpu->state, TierState::active);
  EXPECT_EQ(gpu->resident_bytes, kSize);
  EXPECT_GT(gpu->exporter_requests, 0u);

  ASSERT_TRUE(runner.demote("gpu", Caller::dbus(0)));
  runner.wait_idle();
  auto ev = events.get();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back(), "state gpu evacuated") << ::testing::PrintToString(ev);
  auto mid = answered(observer);
  gpu = tier_of(mid, "gpu");
  EXPECT_EQ(gpu->state, TierState::evacuated);
  EXPECT_EQ(gpu->resident_bytes, 0u);
  EXPECT_EQ(gpu->spilled_bytes, kSize);
  EXPECT_GT(gpu->spill_ratio, 0.0);
  auto j = load_journal(engine.fs());
  ASSERT_TRUE(j);
  EXPECT_TRUE(j->find_tier("gpu")->evacuated);

  ASSERT_TRUE(runner.promote("gpu", Caller::dbus(0)));
  runner.wait_idle();
  EXPECT_EQ(events.get().back(), "state gpu active") << ::testing::PrintToString(events.get());
  stop = true;
  a.join();
  b.join();
  EXPECT_EQ(bad, 0);
  const Status after = answered(observer);  // tier_of points into it
  gpu = tier_of(after, "gpu");
  EXPECT_EQ(gpu->state, TierState::active);
  EXPECT_EQ(gpu->resident_bytes, kSize);
  EXPECT_TRUE(dynamic_cast<swap::RecordingKernel&>(engine.kernel()).calls().empty())
      << "the swap area was never touched";
  bool progressed = false;
  for (const auto& e : events.get())
    if (e.starts_with("progress gpu ") && e != "progress gpu 0/" + std::to_string(kSize)) progressed = true;
  EXPECT_TRUE(progressed) << ::testing::PrintToString(events.get());
}

}  // namespace
}  // namespace tierswap
