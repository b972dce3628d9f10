// The tick never waits on an exporter: the status observer sends each vram
// tier's exporter its figures request and returns; the answer is taken
// when it arrives (the daemon loop's watch, FiguresWatcher, on a real
// sd-event loop here), used with its age until it is kFiguresMaxAgeMs old,
// and a peer that hangs up or never answers costs nothing but its figures.
// The peer is a real Unix socket that answers only when the test says so;
// the channel is the vram kind's own ExporterChannel. The machine is a fake
// root where the tier "gpu" was set up by an earlier tierswapd.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "backends/vram/exporter_control.hpp"
#include "daemon/engine.hpp"
#include "daemon/figures_watcher.hpp"
#include "daemon/journal.hpp"
#include "daemon/status_observer.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"
#include "vram_fixture.hpp"

namespace tierswap {
namespace {

namespace fsys = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint64_t kSize = test::kGpuTierBytes;

struct Machine {
  std::unique_ptr<test::TempRoot> root;
  std::unique_ptr<Engine> engine;
  fsys::path path(const std::string& rel) const { return root->path() / rel; }
  void start() {
    root = std::make_unique<test::TempRoot>("02-zram-file-zswap");
    test::attach_gpu_tier(*root);
    test::spit(path("etc/tierswap.yaml"),
               "tiers:\n  - name: gpu\n    kind: vram\n    size: 64M\n    store: host\n    connections: 2\n"
               "    priority: 50\n    spill: {kind: lz4}\n");
    OwnedTier t = test::journaled_gpu_tier();
    t.spill = "lz4";
    t.control_socket = "/run/tierswap/exporter-gpu/control";
    Journal j;
    j.source = "/etc/tierswap.yaml";
    j.tiers = {t};
    ASSERT_TRUE(save_journal(HostFs(root->str()), j));
    EngineOptions eo;
    eo.root = root->str();
    eo.config = path("etc/tierswap.yaml").string();
    eo.make_kernel = swap::recording_kernel_on;
    engine = std::make_unique<Engine>(eo);
    ASSERT_TRUE(engine->start());
  }
};

}  // namespace
}  // namespace tierswap

namespace tierswap {
namespace {

// The exporter's end of the control socket, answering only when told: a
// real listening Unix socket, as tierswap-nbd's --control-socket is.
class SlowPeer {
 public:
  explicit SlowPeer(const fsys::path& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 4) == 0;
  }
  ~SlowPeer() {
    hang_up();
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  // The next request line on the current connection (accepting it first);
  // "" when none comes within 5 s.
  std::string read_request() {
    if (conn_ < 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return "";
      conn_ = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
    std::string line;
    char c;
    while (line.empty() || line.back() != '\n') {
      pollfd p{conn_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1 || ::read(conn_, &c, 1) != 1) return "";
      line += c;
    }
    line.pop_back();
    return line;
  }
  // A request waiting (without taking it).
  bool request_waiting() const {
    pollfd p{conn_, POLLIN, 0};
    return conn_ >= 0 && ::poll(&p, 1, 0) == 1;
  }
  void answer(const std::string& json) {
    const std::string line = json + "\n";
    ASSERT_EQ(::write(conn_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  void hang_up() {
    if (conn_ >= 0) ::close(conn_);
    conn_ = -1;
  }

 private:
  int fd_ = -1, conn_ = -1;
  bool ok_ = false;
};

// The tick never waits on an exporter: a reading sends the request and
// returns while the peer has not answered; the answer is taken when it
// arrives (the loop's watch on the connection), used with its age, and
// counts as unavailable once older than kFiguresMaxAgeMs; a peer that hangs
// up is the same, and the next tick connects again.
TEST(ExporterFigures, ASlowExporterNeverHoldsTheReadingUpAndItsAnswerIsTakenWhenItArrives) {
  Machine m;
  ASSERT_NO_FATAL_FAILURE(m.start());
  const fsys::path sock = m.root->path() / "ctl.sock";
  SlowPeer peer(sock);
  ASSERT_TRUE(peer.ok()) << sock;
  auto channel = std::make_shared<vram::ExporterChannel>("vram tier \"gpu\"", sock.string(), ::getpid());
  auto clock = std::chrono::steady_clock::time_point{} + 1h;
  ObserverOptions oo;
  oo.now = [&] { return clock; };
  oo.control_for = [&](const OwnedTier&) -> std::shared_ptr<TierControl> { return channel; };
  oo.providers.vram = [] {
    return std::vector<policy::VramTierSample>{
        {.tier = "gpu", .vram_free_bytes = 8ULL << 30, .vram_total_bytes = 24ULL << 30}};
  };
  std::vector<std::string> warned;
  oo.warn = [&](const std::string& l) { warned.push_back(l); };
  StatusObserver observer(*m.engine, oo);
  auto gpu_of = [](const Observation& o) {
    return *std::find_if(o.status.tiers.begin(), o.status.tiers.end(),
                         [](const TierStatus& t) { return t.name == "gpu"; });
  };

  // The tick's reading: the request is sent, the reading is complete, and
  // the peer has not answered (it has not even been accepted yet).
  auto o = observer.observe({});
  EXPECT_FALSE(gpu_of(o).exporter_live);
  EXPECT_EQ(o.snapshot.vram.at(0).p99_latency_us, 0u);
  EXPECT_EQ(peer.read_request(), R"({"cmd":"stats"})");
  // Another tick while that request is unanswered: no second request.
  o = observer.observe({});
  EXPECT_FALSE(gpu_of(o).exporter_live);
  EXPECT_FALSE(peer.request_waiting());
  EXPECT_TRUE(warned.empty()) << ::testing::PrintToString(warned);

  // The loop watches the connection; the answer is taken when it arrives.
  sd_event* loop = nullptr;
  ASSERT_GE(sd_event_new(&loop), 0);
  {
    int taken = 0;
    FiguresWatcher watcher(
        loop, [&] { return observer.figures_watches(); },
        [&](const std::string& tier, std::uint64_t generation) {
          ++taken;
          return observer.take_ready(tier, generation);
        });
    watcher.sync();
    ASSERT_EQ(watcher.size(), 1u);
    EXPECT_EQ(sd_event_run(loop, 0), 0) << "nothing to take before the peer answers";
    EXPECT_EQ(taken, 0);
    peer.answer(R"({"ok":true,"requests":7,"latency_us":{"p50":20,"p99":2500,"samples":7},"size":67108864})");
    EXPECT_EQ(sd_event_run(loop, 5'000'000), 1);
    EXPECT_EQ(taken, 1);

    // A status reading (GetStatus) uses it, with its age, and sends nothing.
    clock += 1s;
    o = observer.observe({.poll_figures = false});
    EXPECT_TRUE(gpu_of(o).exporter_live);
    EXPECT_EQ(gpu_of(o).exporter_requests, 7u);
    EXPECT_EQ(gpu_of(o).exporter_figures_age_ms, 1000u);
    EXPECT_EQ(o.snapshot.vram.at(0).p99_latency_us, 2500u);
    EXPECT_FALSE(peer.request_waiting());

    // The next tick asks again; the peer stays silent: the last answer
    // serves until it is kFiguresMaxAgeMs old, then counts as unavailable
    // (said once).
    o = observer.observe({});
    EXPECT_EQ(peer.read_request(), R"({"cmd":"stats"})");
    clock += std::chrono::milliseconds(kFiguresMaxAgeMs - 1000);
    o = observer.observe({});
    EXPECT_TRUE(gpu_of(o).exporter_live);
    EXPECT_EQ(gpu_of(o).exporter_figures_age_ms, kFiguresMaxAgeMs);
    clock += 1ms;
    for (int i = 0; i < 3; ++i) o = observer.observe({});
    EXPECT_FALSE(gpu_of(o).exporter_live);
    EXPECT_EQ(o.snapshot.vram.at(0).p99_latency_us, 0u);
    ASSERT_EQ(warned.size(), 1u) << ::testing::PrintToString(warned);
    EXPECT_NE(warned[0].find("tier \"gpu\": its exporter has not answered for 6 s"), std::string::npos)
        << warned[0];
    EXPECT_FALSE(peer.request_waiting()) << "still one request at a time";

    // The peer hangs up: the watch sees the end and switches itself off;
    // the next tick connects again, and a prompt answer is used.
    peer.hang_up();
    EXPECT_EQ(sd_event_run(loop, 5'000'000), 1);
    watcher.sync();
    EXPECT_EQ(watcher.size(), 0u) << "no watch on a connection that is over";
    o = observer.observe({});
    EXPECT_FALSE(gpu_of(o).exporter_live);
    EXPECT_EQ(peer.read_request(), R"({"cmd":"stats"})");
    watcher.sync();
    ASSERT_EQ(watcher.size(), 1u);
    peer.answer(R"({"ok":true,"requests":9,"latency_us":{"p50":20,"p99":300,"samples":9},"size":67108864})");
    EXPECT_EQ(sd_event_run(loop, 5'000'000), 1);
    o = observer.observe({.poll_figures = false});
    EXPECT_TRUE(gpu_of(o).exporter_live);
    EXPECT_EQ(gpu_of(o).exporter_requests, 9u);

    // What a move's own reading saw (the runner's, as it ends) is used at
    // once, and an answer to a request sent before it is not taken for newer.
    o = observer.observe({});
    EXPECT_EQ(peer.read_request(), R"({"cmd":"stats"})");
    clock += 1ms;
    TierFigures seen;
    seen.requests = 42;
    seen.size_bytes = kSize;
    seen.chunks_total = seen.chunks_spilled = 4;
    observer.figures_seen("gpu", seen);
    peer.answer(R"({"ok":true,"requests":10,"size":67108864})");
    EXPECT_EQ(sd_event_run(loop, 5'000'000), 1);
    o = observer.observe({.poll_figures = false});
    EXPECT_EQ(gpu_of(o).exporter_requests, 42u);
    EXPECT_EQ(gpu_of(o).state, TierState::evacuated);
    clock += 1ms;
    o = observer.observe({});
    EXPECT_EQ(peer.read_request(), R"({"cmd":"stats"})");
    peer.answer(R"({"ok":true,"requests":11,"size":67108864})");
    EXPECT_EQ(sd_event_run(loop, 5'000'000), 1);
    o = observer.observe({.poll_figures = false});
    EXPECT_EQ(gpu_of(o).exporter_requests, 11u);
    EXPECT_EQ(gpu_of(o).state, TierState::active);
  }
  sd_event_unref(loop);
}

}  // namespace
}  // namespace tierswap
