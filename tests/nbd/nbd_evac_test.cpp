// Live evacuation through the real exporter: tierswap-nbd with the host
// store and a spill store (lz4 or a file), several libnbd connections doing
// checksummed random 4 KiB I/O, while the control channel (--control-fd)
// moves every chunk to the spill and back, twice. Nothing lost, no request
// fails, no stale read. And the channel's answers to bad input.
#include <gtest/gtest.h>
#include <libnbd.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "backends/vram/exporter_control.hpp"
#include "tests/nbd/nbd_test_util.hpp"

namespace {

using nbdtest::Exporter;
using nlohmann::json;
using tierswap::vram::ExporterControl;

constexpr std::uint64_t kSize = 32ULL << 20;
constexpr std::uint64_t kPages = kSize / 4096;
constexpr unsigned kClients = 4;

struct Client {
  nbd_handle* h = nbd_create();
  ~Client() {
    if (h != nullptr) nbd_close(h);
  }
};

// Page p at generation g (0: zeros, as the export starts): 16 bytes naming
// them, then half pseudo-random, half a repeated word (lz4 finds something).
void fill(std::byte* out, std::uint64_t p, std::uint64_t g) {
  if (g == 0) {
    std::memset(out, 0, 4096);
    return;
  }
  std::memcpy(out, &p, 8);
  std::memcpy(out + 8, &g, 8);
  std::uint64_t x = (p + 1) * 0x9E3779B97F4A7C15ULL ^ g * 0xBF58476D1CE4E5B9ULL;
  for (unsigned i = 16; i < 4096; i += 8) {
    if (i < 2048) {
      x ^= x >> 31;
      x *= 0xD6E8FEB86659FD93ULL;
      x ^= x >> 29;
    }
    std::memcpy(out + i, &x, 8);
  }
}

// The exporter with a control channel; `control` is the daemon's end.
struct Evac {
  Exporter ex;
  int sv[2] = {-1, -1};
  std::unique_ptr<ExporterControl> control;

  bool start(const std::vector<std::string>& spill) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
    std::vector<std::string> extra = {"--chunk",       "1M", "--control-fd", "3",
                                      "--connections", "8",  "--movers",     "4"};
    extra.insert(extra.end(), spill.begin(), spill.end());
    const bool ok = ex.start(extra, "host", std::to_string(kSize), true, {sv[1]});
    ::close(sv[1]);
    sv[1] = -1;
    control = std::make_unique<ExporterControl>(sv[0]);
    return ok;
  }
  ~Evac() {
    if (sv[0] >= 0) ::close(sv[0]);
  }
  // Starts a job, waits for it; its last progress.
  json run(const char* cmd) {
    auto r = control->call(cmd);
    EXPECT_TRUE(r) << r.error().describe();
    if (!r) return {};
    for (int i = 0; i < 6000; ++i) {
      auto p = control->progress();
      EXPECT_TRUE(p) << p.error().describe();
      if (!p) return {};
      if (!(*p)["running"].get<bool>()) return *p;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << cmd << " did not finish in 30 s";
    return {};
  }
};

// depth 1: one request at a time per connection. More: `depth` requests of
// distinct pages in flight per connection (all writes or all reads), which
// the exporter hands to the store as one batch spanning several chunks.
void evacuate_under_load(const std::vector<std::string>& spill, unsigned depth = 1) {
  Evac e;
  ASSERT_TRUE(e.start(spill)) << e.ex.log();

  std::vector<std::uint64_t> gen(kPages, 0);  // page p belongs to client p % kClients
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> failed{0}, stale{0}, ops{0}, ops_moving{0};
  std::atomic<bool> moving{false};
  std::string first_problem;
  std::mutex problem_mu;
  auto problem = [&](const std::string& what) {
    std::lock_guard lk(problem_mu);
    if (first_problem.empty()) first_problem = what;
  };
  auto client = [&](unsigned t) {
    Client c;
    if (nbd_connect_unix(c.h, e.ex.socket.c_str()) != 0) {
      problem(std::string("connect: ") + nbd_get_error());
      failed++;
      return;
    }
    std::mt19937_64 rng(t * 7919 + 1);
    std::vector<std::byte> bufs(depth * 4096);
    std::vector<std::uint64_t> pg(depth);
    std::vector<std::int64_t> cookies(depth);
    std::byte want[4096];
    while (!stop) {
      const bool write = rng() % 2 == 0;
      for (unsigned n = 0; n < depth;) {
        std::uint64_t p = rng() % kPages;
        p = p - p % kClients + t;
        if (p >= kPages || std::find(pg.begin(), pg.begin() + n, p) != pg.begin() + n) continue;
        pg[n++] = p;
      }
      for (unsigned k = 0; k < depth; ++k) {
        std::byte* buf = bufs.data() + k * 4096;
        if (write) fill(buf, pg[k], gen[pg[k]] + 1);
        cookies[k] = write ? nbd_aio_pwrite(c.h, buf, 4096, pg[k] * 4096, NBD_NULL_COMPLETION, 0)
                           : nbd_aio_pread(c.h, buf, 4096, pg[k] * 4096, NBD_NULL_COMPLETION, 0);
        if (cookies[k] < 0) {
          failed++;
          problem(std::string("submit: ") + nbd_get_error());
          return;
        }
      }
      // A hung exporter fails the test (no reply for 20 s) instead of hanging it.
      for (int idle = 0; nbd_aio_in_flight(c.h) > 0;) {
        const int r = nbd_poll(c.h, 1000);
        if (r < 0 || (r == 0 && ++idle == 20)) {
          failed++;
          problem(r < 0 ? std::string("poll: ") + nbd_get_error()
                        : std::string("no reply in 20 s: the exporter hangs"));
          return;
        }
      }
      for (unsigned k = 0; k < depth; ++k) {
        const std::byte* buf = bufs.data() + k * 4096;
        const std::uint64_t p = pg[k];
        if (nbd_aio_command_completed(c.h, cookies[k]) != 1) {
          failed++;
          problem(std::string(write ? "write: " : "read: ") + nbd_get_error());
        } else if (write) {
          ++gen[p];
        } else {
          fill(want, p, gen[p]);
          if (std::memcmp(buf, want, 4096) != 0) {
            stale++;
            std::uint64_t got_gen = 0;
            std::memcpy(&got_gen, buf + 8, 8);
            problem("page " + std::to_string(p) + ": read generation " + std::to_string(got_gen) +
                    ", wrote " + std::to_string(gen[p]));
          }
        }
      }
      ops += depth;
      if (moving) ops_moving += depth;
    }
    nbd_shutdown(c.h, 0);
  };
  std::vector<std::thread> threads;
  // The clients stop and are joined however this test ends (an ASSERT below
  // returns early; a joinable thread destroyed would terminate the process).
  struct JoinClients {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinClients() {
      stop = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } join_clients{stop, threads};
  for (unsigned t = 0; t < kClients; ++t) threads.emplace_back(client, t);
  while (ops < 2000 && failed == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  for (int round = 0; round < 2; ++round) {
    moving = true;
    json p = e.run("evacuate");
    EXPECT_TRUE(p["error"].is_null()) << p.dump();
    EXPECT_EQ(p["chunks_done"], 32) << p.dump();
    EXPECT_EQ(p["chunks_total"], 32) << p.dump();
    auto s = e.control->stats();
    ASSERT_TRUE(s) << s.error().describe();
    EXPECT_EQ((*s)["chunks"]["spilled"], 32) << s->dump();
    EXPECT_EQ((*s)["resident_bytes"], 0) << s->dump();  // every chunk given back
    p = e.run("promote");
    EXPECT_TRUE(p["error"].is_null()) << p.dump();
    EXPECT_EQ(p["chunks_done"], 32) << p.dump();
    s = e.control->stats();
    ASSERT_TRUE(s);
    EXPECT_EQ((*s)["chunks"]["resident"], 32) << s->dump();
    moving = false;
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0U) << first_problem;
  EXPECT_EQ(stale.load(), 0U) << first_problem;
  EXPECT_GT(ops_moving.load(), 100U) << "too little I/O ran during the moves to show anything";

  // Every page as last written, read back on a fresh connection.
  Client c;
  ASSERT_EQ(nbd_connect_unix(c.h, e.ex.socket.c_str()), 0) << nbd_get_error();
  std::vector<std::byte> all(kSize);
  ASSERT_EQ(nbd_pread(c.h, all.data(), kSize, 0, 0), 0) << nbd_get_error();
  std::byte want[4096];
  for (std::uint64_t p = 0; p < kPages; ++p) {
    fill(want, p, gen[p]);
    ASSERT_EQ(std::memcmp(all.data() + p * 4096, want, 4096), 0) << "page " << p;
  }
  auto s = e.control->stats();
  ASSERT_TRUE(s);
  EXPECT_GT((*s)["ops"]["write"]["requests"].get<std::uint64_t>(), 0U);
  EXPECT_GT((*s)["latency_us"]["p99"].get<double>(), 0.0);
  EXPECT_TRUE(e.ex.alive()) << e.ex.log();
}

TEST(NbdEvac, EveryChunkToLz4AndBackUnderConcurrentIo) {
  evacuate_under_load({"--spill", "lz4"});
}

// Groups of 16 pipelined requests per connection: each reaches the store as
// one batch over several chunks while four movers wait for chunks' locks (a
// batch that took those locks in its own order deadlocked the exporter).
TEST(NbdEvac, EveryChunkToLz4AndBackUnderPipelinedBatches) {
  evacuate_under_load({"--spill", "lz4"}, 16);
}

TEST(NbdEvac, EveryChunkToAFileAndBackUnderConcurrentIo) {
  nbdtest::TempDir d;
  evacuate_under_load({"--spill", "file:" + d.path + "/spill"});
}

TEST(NbdEvac, Lz4ReportsItsRatioWhileSpilled) {
  Evac e;
  ASSERT_TRUE(e.start({"--spill", "lz4"})) << e.ex.log();
  Client c;
  ASSERT_EQ(nbd_connect_unix(c.h, e.ex.socket.c_str()), 0) << nbd_get_error();
  std::byte page[4096];
  for (std::uint64_t p = 0; p < kPages; p += 2) {
    fill(page, p, 1);
    ASSERT_EQ(nbd_pwrite(c.h, page, 4096, p * 4096, 0), 0) << nbd_get_error();
  }
  e.run("evacuate");
  auto s = e.control->stats();
  ASSERT_TRUE(s);
  const json& sp = (*s)["spill"];
  EXPECT_EQ(sp["kind"], "lz4");
  EXPECT_EQ(sp["stored_bytes"], kSize / 2);  // the zero pages hold nothing
  EXPECT_GT(sp["ratio"].get<double>(), 1.3) << sp.dump();
}

TEST(NbdEvac, EvacuateWithoutSpillIsAClearErrorOverTheChannel) {
  Evac e;
  ASSERT_TRUE(e.start({})) << e.ex.log();
  auto r = e.control->evacuate();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no spill store configured"), std::string::npos) << r.error().message;
  auto s = e.control->stats();
  ASSERT_TRUE(s) << s.error().describe();  // the channel still answers
  EXPECT_TRUE((*s)["spill"].is_null());
}

TEST(NbdEvac, SpillFileAtAnExistingPathIsRefused) {
  nbdtest::TempDir d;
  const std::string path = d.path + "/spill";
  { std::ofstream(path) << "keep me"; }
  Exporter ex;
  ASSERT_FALSE(ex.start({"--spill", "file:" + path}));
  EXPECT_NE(ex.wait_exit(5000), -1);
  EXPECT_NE(ex.log().find("something is already there"), std::string::npos) << ex.log();
  std::ifstream f(path);
  std::string text;
  std::getline(f, text);
  EXPECT_EQ(text, "keep me");
}

TEST(NbdEvac, SpillFileThroughASymlinkIsRefused) {
  nbdtest::TempDir d;
  const std::string path = d.path + "/spill";
  std::filesystem::create_symlink(d.path + "/elsewhere", path);
  Exporter ex;
  ASSERT_FALSE(ex.start({"--spill", "file:" + path}));
  EXPECT_NE(ex.log().find("something is already there"), std::string::npos) << ex.log();
  EXPECT_FALSE(std::filesystem::exists(d.path + "/elsewhere"));
}

TEST(NbdEvac, BadSpillAndControlOptionsAreUsageErrors) {
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--spill", "zstd"}, {"--spill", "file:relative"}, {"--chunk", "1000"}}) {
    Exporter ex;
    ex.start(bad);
    const int st = ex.wait_exit(5000);
    ASSERT_NE(st, -1);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << bad[0] << " " << bad[1] << ": " << ex.log();
  }
  Exporter ex;  // --control-fd on something that is not a socket
  ex.start({"--control-fd", "0"});
  EXPECT_NE(ex.wait_exit(5000), -1);
  EXPECT_NE(ex.log().find("--control-fd 0"), std::string::npos) << ex.log();
}

}  // namespace
