// The daemon's VRAM-tier path up to where the kernel takes over, on machines
// without an nbd driver: tierswapd-test on a fake root (recording kernel)
// with a `kind: vram` tier starts tierswap-nbd on socketpairs, handshakes on
// them and "attaches" through --test-nbd-handoff, which hands the socket to
// this test instead of the kernel (daemon/test_main.cpp). The test then does
// what the kernel's nbd driver would: checksummed random 4 KiB reads and
// writes in the transmission phase (the daemon did the handshake, so libnbd,
// which always does its own, cannot take over this socket). A reload
// without the tier (SIGHUP) must swap it off (recording kernel), detach and
// end the exporter; with store: cuda the VRAM it held must be free again
// (nvidia-smi). Parametrised: host (label nbd) and cuda (label gpu; skips
// without an NVIDIA driver). Away from the build tree (the GPU machine):
// TIERSWAP_TEST_BIN_DIR holds tierswapd-test and tierswap-nbd,
// TIERSWAP_FIXTURES_DIR the tests/fixtures folder.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nbd_test_util.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace nbdtest;

namespace {

constexpr std::uint64_t kSize = 1ULL << 30;  // the tier: 1 GiB
constexpr std::uint32_t kBlock = 4096;

std::string bin_dir() {
  if (const char* d = std::getenv("TIERSWAP_TEST_BIN_DIR")) return d;
  return fs::path(TIERSWAPD_TEST).parent_path();
}

fs::path fixtures_dir() {
  if (const char* d = std::getenv("TIERSWAP_FIXTURES_DIR")) return d;
  return TIERSWAP_FIXTURES_DIR;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    ::pclose(f);
  }
  return out;
}

// GPU memory in use (MiB) and each compute process's (pid -> MiB).
long gpu_used_mib() {
  return std::atol(
      command_output("nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0").c_str());
}
std::map<int, long> compute_apps() {
  std::map<int, long> out;
  std::istringstream in(
      command_output("nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits"));
  for (std::string line; std::getline(in, line);) {
    int pid = 0;
    long mib = 0;
    char comma;
    std::istringstream l(line);
    if (l >> pid >> comma >> mib) out[pid] = mib;
  }
  return out;
}

// The tierswap-nbd processes whose parent is `daemon`.
std::vector<int> exporters_of(pid_t daemon) {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = slurp(e.path() / "stat");
    const auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (stat.substr(open + 1, close - open - 1) != "tierswap-nbd") continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == daemon && state != 'Z') out.push_back(std::stoi(name));
  }
  return out;
}

int listen_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Accepts one hand-off within `ms` and returns the socket it carries.
int receive_handoff(int listener, int ms) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, ms) != 1) return -1;
  const int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return -1;
  char byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = buf;
  m.msg_controllen = sizeof buf;
  int fd = -1;
  if (::recvmsg(c, &m, MSG_CMSG_CLOEXEC) == 1)
    if (cmsghdr* cm = CMSG_FIRSTHDR(&m); cm && cm->cmsg_type == SCM_RIGHTS)
      std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  ::close(c);
  return fd;
}

template <class F>
bool wait_for(F f, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!f()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

// The daemon's config: the vram tier `gpu` (when with_tier) of `size` bytes
// with `tier_extra` lines, then `tail` (e.g. a `policy:` section).
std::string config(const std::string& store, bool with_tier, std::uint64_t size = kSize,
                   const std::string& tier_extra = "    connections: 1\n", const std::string& tail = "") {
  std::string c = "tiers:\n";
  if (with_tier)
    c += "  - name: gpu\n    kind: vram\n    size: " + std::to_string(size >> 20) + "M\n    store: " + store +
         "\n    priority: 50\n" + tier_extra;
  return c + tail;
}

class VramDaemon : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    store_ = GetParam();
    if (::geteuid() != 0) GTEST_SKIP() << "the exporter needs root (CAP_IPC_LOCK for mlockall)";
    if (store_ == "cuda") {
      std::error_code ec;
      if (fs::is_empty("/proc/driver/nvidia/gpus", ec) || ec)
        GTEST_SKIP() << "no NVIDIA driver here (/proc/driver/nvidia/gpus lists no GPU)";
      if (!have_tool("nvidia-smi")) GTEST_SKIP() << "nvidia-smi is not installed";
    }
    char t[] = "/tmp/tsvramd.XXXXXX";
    root_ = ::mkdtemp(t);
    fs::copy(fixtures_dir() / "01-desktop-default", root_, fs::copy_options::recursive);
    // The nbd driver's files as the kernel would show them (one free device),
    // and the GPUs the real driver lists.
    fs::create_directories(root_ / "sys/module/nbd");
    fs::create_directories(root_ / "sys/block/nbd0");
    std::ofstream(root_ / "sys/block/nbd0/size") << "0\n";
    std::ofstream(root_ / "dev/nbd0");
    fs::resize_file(root_ / "dev/nbd0", size_);
    std::ofstream(root_ / "dev/null");
    fs::create_directories(root_ / "proc/driver/nvidia/gpus");
    std::error_code ec;
    for (const auto& g : fs::directory_iterator("/proc/driver/nvidia/gpus", ec))
      fs::create_directories(root_ / "proc/driver/nvidia/gpus" / g.path().filename());
    fs::create_directories(root_ / "handoff");
    listener_ = listen_unix((root_ / "handoff/nbd0.sock").string());
    ASSERT_GE(listener_, 0);
    write_config(true);
  }
  void TearDown() override {
    if (sock_ >= 0) ::close(sock_);
    for (int fd : socks_) ::close(fd);
    if (daemon_ > 0) {
      ::kill(daemon_, SIGTERM);
      int st = 0;
      ::waitpid(daemon_, &st, 0);
    }
    for (int p : leftover_) ::kill(p, SIGKILL);
    if (listener_ >= 0) ::close(listener_);
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }
  void write_config(bool with_tier) {
    std::ofstream(root_ / "etc/tierswap.yaml", std::ios::trunc)
        << config(store_, with_tier, size_, tier_extra_, tail_);
  }
  void start() {
    daemon_ = ::fork();
    if (daemon_ == 0) {
      const std::string exe = bin_dir() + "/tierswapd-test", root = root_.string(),
                        cfg = (root_ / "etc/tierswap.yaml").string(), handoff = (root_ / "handoff").string(),
                        log = (root_ / "tierswapd.log").string();
      std::freopen(log.c_str(), "w", stderr);
      for (const auto& [k, v] : env_) ::setenv(k.c_str(), v.c_str(), 1);
      ::execl(exe.c_str(), exe.c_str(), "--root", root.c_str(), "--config", cfg.c_str(), "--no-dbus",
              "--test-fake-kernel", "--test-nbd-handoff", handoff.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  std::string log() { return slurp(root_ / "tierswapd.log"); }
  bool swapped_on() { return slurp(root_ / "proc/swaps").find("/dev/nbd0") != std::string::npos; }

  std::string store_;
  std::uint64_t size_ = kSize;
  std::string tier_extra_ = "    connections: 1\n", tail_;
  fs::path root_;
  int listener_ = -1, sock_ = -1;
  std::vector<int> socks_;                  // more handed-off sockets (connections > 1)
  std::map<std::string, std::string> env_;  // set in the daemon's environment
  pid_t daemon_ = -1;
  std::vector<int> leftover_;
};

TEST_P(VramDaemon, ServesChecksummedIoThenTheReloadWithoutTheTierEndsTheExporter) {
  const long before = store_ == "cuda" ? gpu_used_mib() : 0;
  start();
  sock_ = receive_handoff(listener_, 60000);
  ASSERT_GE(sock_, 0) << "no socket was handed over at NBD_SET_SOCK\n" << log();
  ASSERT_TRUE(wait_for([&] { return swapped_on(); }, 30s)) << log();
  const auto exporters = exporters_of(daemon_);
  ASSERT_EQ(exporters.size(), 1U) << log();
  const int exporter = exporters[0];
  leftover_ = exporters;
  // The daemon reads /proc/PID/stat through its root to see the exporter
  // exit (and reaps it): give the fake root the real entry.
  // (tierswapd-test links it at the fork; made here if it did not.)
  std::error_code link_ec;
  fs::create_directory_symlink("/proc/" + std::to_string(exporter), root_ / "proc" / std::to_string(exporter),
                               link_ec);

  // Checksummed random 4 KiB I/O, as the kernel's driver would send it.
  std::mt19937_64 rng(42);
  const std::uint64_t blocks = kSize / kBlock;
  std::map<std::uint64_t, unsigned> written;  // block -> seed
  std::uint64_t cookie = 1;
  for (int i = 0; i < 4000; ++i) {
    const std::uint64_t b = rng() % blocks;
    if (written.empty() || rng() % 2 == 0) {
      const unsigned seed = static_cast<unsigned>(rng());
      ASSERT_TRUE(raw_request(sock_, nbd::kCmdWrite, 0, b * kBlock, kBlock, cookie, pattern(kBlock, seed)));
      ASSERT_EQ(raw_reply(sock_, cookie++), 0) << "write at block " << b;
      written[b] = seed;
    } else {
      auto it = written.lower_bound(b);
      if (it == written.end()) it = written.begin();
      std::vector<std::byte> data(kBlock);
      ASSERT_TRUE(raw_request(sock_, nbd::kCmdRead, 0, it->first * kBlock, kBlock, cookie));
      ASSERT_EQ(raw_reply(sock_, cookie++, &data), 0);
      ASSERT_EQ(data, pattern(kBlock, it->second)) << "block " << it->first << " read back wrong";
    }
  }
  for (const auto& [b, seed] : written) {
    std::vector<std::byte> data(kBlock);
    ASSERT_TRUE(raw_request(sock_, nbd::kCmdRead, 0, b * kBlock, kBlock, cookie));
    ASSERT_EQ(raw_reply(sock_, cookie++, &data), 0);
    ASSERT_EQ(data, pattern(kBlock, seed)) << "block " << b << " read back wrong at the end";
  }

  // The VRAM the exporter holds once its store was written (chunks may be
  // mapped on first use).
  long held = 0, during = 0;
  if (store_ == "cuda") {
    during = gpu_used_mib();
    const auto apps = compute_apps();
    if (apps.contains(exporter)) held = apps.at(exporter);
    EXPECT_GE(std::max(held, during - before), static_cast<long>(kSize >> 20))
        << "the exporter holds the tier's 1 GiB of VRAM";
  }

  // Remove the tier: a reload without it swaps it off, disconnects the
  // device, stops the exporter. At the disconnect the kernel would send
  // NBD_CMD_DISC and close its socket; here the test holds it, so it does
  // that once the hand-off seam saw NBD_DISCONNECT (the pid file is gone).
  ASSERT_TRUE(fs::exists(root_ / "sys/block/nbd0/pid"));
  write_config(false);
  ::kill(daemon_, SIGHUP);
  ASSERT_TRUE(wait_for([&] { return !fs::exists(root_ / "sys/block/nbd0/pid"); }, 30s))
      << "no NBD_DISCONNECT\n"
      << log();
  EXPECT_FALSE(swapped_on()) << "the device was disconnected while still swapped on";
  ASSERT_TRUE(raw_request(sock_, nbd::kCmdDisc, 0, 0, 0, cookie));
  ::close(sock_);
  sock_ = -1;
  EXPECT_TRUE(wait_for([&] { return ::kill(exporter, 0) != 0; }, 15s)) << "the exporter still runs\n"
                                                                       << log();
  EXPECT_FALSE(fs::exists(root_ / "sys/block/nbd0/pid")) << "the device was not disconnected";
  EXPECT_EQ(::kill(daemon_, 0), 0) << "the daemon goes on after the reload\n" << log();
  if (store_ == "cuda") {
    bool gone = wait_for([&] { return !compute_apps().contains(exporter); }, 10s);
    const long after = gpu_used_mib();
    EXPECT_TRUE(gone) << "nvidia-smi still lists the exporter";
    EXPECT_LE(after, before + 64) << "VRAM was not freed";
    std::printf("vram: before %ld MiB, with the exporter %ld MiB (its process %ld MiB), after %ld MiB\n",
                before, during, held, after);
  }
  std::printf("blocks written and verified: %zu, requests: %llu\n", written.size(),
              static_cast<unsigned long long>(cookie - 1));
  ::kill(daemon_, SIGTERM);
  int st = 0;
  ASSERT_EQ(::waitpid(daemon_, &st, 0), daemon_);
  daemon_ = -1;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << log();
}

INSTANTIATE_TEST_SUITE_P(Stores, VramDaemon, ::testing::Values("host", "cuda"),
                         [](const auto& info) { return info.param; });

// --- contention: another program wants the GPU's memory -------------------
//
// The daemon's real policy with real GPU signals (NVML) on a `store: cuda`
// tier with an lz4 spill, while a connection does checksummed random
// 4 KiB I/O on it (raw NBD requests on the handed-off socket, as the
// kernel's driver would send them; libnbd always does its own handshake, so
// it cannot take over a socket past the daemon's): vram_hog takes the free
// VRAM and then the tier's in steps. The daemon must see the foreign memory
// on its tick and evacuate the tier before the step that needs the tier's
// VRAM, so that no allocation of the hog fails; the connection sees no
// error and no wrong data; once the hog exits, the tier is promoted back
// after the cool-down. Prints the time from the hog's first step (past the
// policy's foreign threshold) to the first VRAM given back, on the hog's
// clock (CLOCK_MONOTONIC): bench/results/contention-gpu.md.

constexpr std::uint64_t kContentionSize = 4ULL << 30;
// One connection: the hand-off seam, like the kernel's ioctl interface,
// takes one socket per device.
constexpr int kClients = 1;

struct HogOutput {
  std::map<std::string, std::string> lines;           // first word -> rest (first one)
  std::vector<std::pair<std::uint64_t, long>> steps;  // at_ns, MiB
  std::string text;
};

HogOutput parse_hog(const std::string& text) {
  HogOutput h;
  h.text = text;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    std::string key;
    l >> key;
    std::string rest;
    std::getline(l, rest);
    if (key == "step") {
      int k = 0;
      std::string w;
      unsigned long long at = 0;
      long mib = 0;
      std::istringstream r(rest);
      r >> k >> w >> at >> w >> mib;
      h.steps.emplace_back(at, mib);
    }
    h.lines.emplace(key, rest);
  }
  return h;
}

// The number after `word` in `rest` ("at_ns 123 mib 4" -> word at_ns: 123).
std::uint64_t field(const std::string& rest, const std::string& word) {
  std::istringstream in(rest);
  for (std::string w; in >> w;)
    if (w == word) {
      unsigned long long v = 0;
      in >> v;
      return v;
    }
  return 0;
}

class VramContention : public VramDaemon {
 public:
  VramContention() {
    size_ = kContentionSize;
    tier_extra_ = "    connections: " + std::to_string(kClients) + "\n    spill: {kind: lz4}\n";
    // The defaults but for the cool-down (300 s), shortened to keep the test short.
    tail_ =
        "policy:\n  reserve_mib: 1024\n  foreign_vram_mib: 2048\n  cooldown_seconds: 3\n"
        "  max_transitions_per_hour: 4\n";
  }
};

// One connection's checksummed random 4 KiB I/O on the blocks b with
// b % kClients == id, until `stop`.
struct Client {
  int fd = -1;
  int id = 0;
  std::map<std::uint64_t, unsigned> written;
  std::uint64_t cookie = 1, ops = 0, errors = 0, bad = 0;
  double max_ms = 0;
  std::string first_problem;

  void note(const std::string& what) {
    if (first_problem.empty()) first_problem = what;
  }
  bool write(std::uint64_t b, unsigned seed) {
    const auto t = std::chrono::steady_clock::now();
    if (!raw_request(fd, nbd::kCmdWrite, 0, b * kBlock, kBlock, cookie, pattern(kBlock, seed)) ||
        raw_reply(fd, cookie++, nullptr, 10000) != 0) {
      ++errors;
      note("write at block " + std::to_string(b) + " failed");
      return false;
    }
    max_ms = std::max(
        max_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
    written[b] = seed;
    ++ops;
    return true;
  }
  bool check(std::uint64_t b, unsigned seed) {
    std::vector<std::byte> data(kBlock);
    const auto t = std::chrono::steady_clock::now();
    if (!raw_request(fd, nbd::kCmdRead, 0, b * kBlock, kBlock, cookie) ||
        raw_reply(fd, cookie++, &data, 10000) != 0) {
      ++errors;
      note("read at block " + std::to_string(b) + " failed");
      return false;
    }
    max_ms = std::max(
        max_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
    ++ops;
    if (data != pattern(kBlock, seed)) {
      ++bad;
      note("block " + std::to_string(b) + " read back wrong");
    }
    return true;
  }
  void run(const std::atomic<bool>& stop) {
    std::mt19937_64 rng(1234 + id);
    const std::uint64_t blocks = kContentionSize / kBlock;
    // Data in every chunk first, so that the evacuation moves real pages.
    for (std::uint64_t b = id; b < blocks && errors == 0; b += 997 * kClients)
      write(b, static_cast<unsigned>(rng()));
    while (!stop && errors == 0) {
      std::uint64_t b = rng() % (blocks / kClients) * kClients + id;
      if (rng() % 2 == 0) {
        write(b, static_cast<unsigned>(rng()));
      } else {
        auto it = written.lower_bound(b);
        if (it == written.end()) it = written.begin();
        check(it->first, it->second);
      }
    }
  }
  void verify_all() {
    for (const auto& [b, seed] : written)
      if (!check(b, seed)) break;
  }
};

TEST_P(VramContention, AnotherProgramTakesTheVramTheTierIsEvacuatedInTimeAndComesBack) {
  const std::string hog = bin_dir() + "/vram_hog";
  if (::access(hog.c_str(), X_OK) != 0) GTEST_SKIP() << hog << " is not there";
  start();
  std::vector<int> socks;
  for (int i = 0; i < kClients; ++i) {
    const int fd = receive_handoff(listener_, 30000);
    ASSERT_GE(fd, 0) << "no socket " << i << " was handed over at NBD_SET_SOCK\n" << log();
    socks.push_back(fd);
    socks_.push_back(fd);
  }
  ASSERT_TRUE(wait_for([&] { return swapped_on(); }, 30s)) << log();
  const auto exporters = exporters_of(daemon_);
  ASSERT_EQ(exporters.size(), 1U) << log();
  const int exporter = exporters[0];
  leftover_ = exporters;
  // (tierswapd-test links it at the fork; made here if it did not.)
  std::error_code link_ec;
  fs::create_directory_symlink("/proc/" + std::to_string(exporter), root_ / "proc" / std::to_string(exporter),
                               link_ec);

  std::atomic<bool> stop{false};
  std::vector<Client> clients(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    clients[i].fd = socks[i];
    clients[i].id = i;
    threads.emplace_back([&c = clients[i], &stop] { c.run(stop); });
  }
  auto finish = [&] {
    stop = true;
    for (auto& t : threads)
      if (t.joinable()) t.join();
  };
  struct Joiner {
    std::function<void()> f;
    ~Joiner() { f(); }
  } joiner{finish};
  std::this_thread::sleep_for(2s);
  const auto apps_before = compute_apps();
  const long exporter_before = apps_before.contains(exporter) ? apps_before.at(exporter) : -1;

  // The other program.
  const fs::path hog_out = root_ / "hog.out";
  const pid_t hog_pid = ::fork();
  if (hog_pid == 0) {
    std::freopen(hog_out.c_str(), "w", stdout);
    const std::string beyond = std::to_string(kContentionSize >> 20);
    ::execl(hog.c_str(), hog.c_str(), "--step-mib", "4096", "--interval-ms", "200", "--beyond-free-mib",
            beyond.c_str(), "--leave-mib", "1024", "--hold-ms", "3000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(hog_pid, 0);
  int hog_status = -1;
  const bool hog_ended = wait_for(
      [&] {
        int st = 0;
        if (::waitpid(hog_pid, &st, WNOHANG) != hog_pid) return false;
        hog_status = st;
        return true;
      },
      120s);
  if (!hog_ended) {
    ::kill(hog_pid, SIGKILL);
    ::waitpid(hog_pid, nullptr, 0);
  }
  const HogOutput h = parse_hog(slurp(hog_out));
  const auto apps_evacuated = compute_apps();
  EXPECT_TRUE(hog_ended) << "the other program did not end\n" << h.text;
  EXPECT_TRUE(WIFEXITED(hog_status) && WEXITSTATUS(hog_status) == 0)
      << "the other program's allocation failed (exit status " << hog_status
      << "): the tier's VRAM was not given back in time\n"
      << h.text << "\n--- daemon log\n"
      << log();
  EXPECT_TRUE(h.lines.contains("reached")) << h.text;
  EXPECT_NE(log().find("tier gpu evacuated:"), std::string::npos) << log();

  // Back in VRAM once the other program is gone (cool-down 3 s).
  const bool promoted = wait_for([&] { return log().find("tier gpu promoted:") != std::string::npos; }, 60s);
  EXPECT_TRUE(promoted) << "the tier was not promoted back\n" << log();
  std::this_thread::sleep_for(1s);  // I/O on the promoted tier too
  finish();
  std::uint64_t ops = 0;
  double max_ms = 0;
  for (auto& c : clients) {
    c.verify_all();
    EXPECT_EQ(c.errors, 0U) << "connection " << c.id << ": " << c.first_problem;
    EXPECT_EQ(c.bad, 0U) << "connection " << c.id << ": " << c.first_problem;
    ops += c.ops;
    max_ms = std::max(max_ms, c.max_ms);
  }
  EXPECT_GT(ops, 10000U) << "the connections hardly did any I/O";
  const auto apps_after = compute_apps();
  const long exporter_after = apps_after.contains(exporter) ? apps_after.at(exporter) : -1;
  if (exporter_before >= 0 && exporter_after >= 0) {
    EXPECT_GE(exporter_after, static_cast<long>(kContentionSize >> 20))
        << "the exporter holds the tier's VRAM again after the promote";
  }

  // The figure.
  const std::uint64_t first = h.steps.empty() ? 0 : h.steps.front().first;
  const std::uint64_t freed =
      h.lines.contains("freed_by_others") ? field(h.lines.at("freed_by_others"), "at_ns") : 0;
  EXPECT_GT(freed, 0U) << "the other program never saw VRAM given back\n" << h.text;
  std::printf(
      "contention: hog free at start %s MiB, target %s MiB, %zu steps of up to 4096 MiB every 200 ms\n",
      h.lines.contains("free_at_start_mib") ? h.lines.at("free_at_start_mib").c_str() : "?",
      h.lines.contains("target_mib") ? h.lines.at("target_mib").c_str() : "?", h.steps.size());
  if (first > 0 && freed > first)
    std::printf("contention: first foreign step (%ld MiB) -> first VRAM given back: %.0f ms\n",
                h.steps.front().second, double(freed - first) / 1e6);
  std::printf("contention: exporter VRAM %ld MiB before, %ld MiB after the hog, %ld MiB after the promote\n",
              exporter_before, apps_evacuated.contains(exporter) ? apps_evacuated.at(exporter) : -1L,
              exporter_after);
  std::printf("contention: %llu requests on %d connection(s), no error, slowest %.2f ms\n",
              static_cast<unsigned long long>(ops), kClients, max_ms);
  std::istringstream lg(log());
  for (std::string line; std::getline(lg, line);)
    if (line.find("evacuat") != std::string::npos || line.find("promot") != std::string::npos ||
        line.find("vram") != std::string::npos)
      std::printf("daemon: %s\n", line.c_str());

  // Remove the tier as in the test above.
  write_config(false);
  ::kill(daemon_, SIGHUP);
  ASSERT_TRUE(wait_for([&] { return !fs::exists(root_ / "sys/block/nbd0/pid"); }, 30s))
      << "no NBD_DISCONNECT\n"
      << log();
  for (int fd : socks) raw_request(fd, nbd::kCmdDisc, 0, 0, 0, 0);
  for (int fd : socks_) ::close(fd);
  socks_.clear();
  EXPECT_TRUE(wait_for([&] { return ::kill(exporter, 0) != 0; }, 15s)) << "the exporter still runs\n"
                                                                       << log();
}

INSTANTIATE_TEST_SUITE_P(Gpu, VramContention, ::testing::Values("cuda"),
                         [](const auto& info) { return info.param; });

// --- the same loop on the CPU machines: NVML through the fake library -----
//
// tests/fakes/fake_nvml.c as libnvidia-ml.so.1 (LD_LIBRARY_PATH), its
// figures from a file the test rewrites: a `store: host` tier with an lz4
// spill is evacuated by the policy's "foreign" rule once another process
// holds 8 GiB on the (fake) GPU, serves the blocks written before from its
// spill, and is promoted back after the cool-down once that process is gone.
class VramPolicyFakeNvml : public VramDaemon {
 public:
  VramPolicyFakeNvml() {
    size_ = 64ULL << 20;
    tier_extra_ = "    connections: 1\n    spill: {kind: lz4}\n";
    tail_ = "policy:\n  foreign_vram_mib: 2048\n  cooldown_seconds: 2\n";
  }
  void SetUp() override {
    VramDaemon::SetUp();
    if (IsSkipped()) return;
    state_ = root_ / "nvml.state";
    env_["LD_LIBRARY_PATH"] = FAKE_NVML_DIR;
    env_["FAKE_NVML_STATE"] = state_.string();
    gpu(0);
  }
  void gpu(std::uint64_t foreign) {
    std::ofstream(state_, std::ios::trunc)
        << "count=1\ngpu0.name=NVIDIA H200\ngpu0.uuid=GPU-fake\ngpu0.total=150000000000\n"
        << "gpu0.free=" << 140000000000ULL - foreign << "\ngpu0.used=" << 10000000000ULL + foreign << "\n"
        << (foreign > 0 ? "gpu0.compute=4242:" + std::to_string(foreign) + "\n" : "");
  }
  fs::path state_;
};

TEST_P(VramPolicyFakeNvml, ForeignVramEvacuatesTheTierAndItsEndPromotesIt) {
  start();
  sock_ = receive_handoff(listener_, 30000);
  ASSERT_GE(sock_, 0) << "no socket was handed over\n" << log();
  ASSERT_TRUE(wait_for([&] { return swapped_on(); }, 30s)) << log();
  const auto exporters = exporters_of(daemon_);
  ASSERT_EQ(exporters.size(), 1U) << log();
  leftover_ = exporters;
  std::uint64_t cookie = 1;
  auto check_all = [&](const char* when) {
    for (std::uint64_t b = 0; b < size_ / kBlock; b += 61) {
      std::vector<std::byte> data(kBlock);
      ASSERT_TRUE(raw_request(sock_, nbd::kCmdRead, 0, b * kBlock, kBlock, cookie));
      ASSERT_EQ(raw_reply(sock_, cookie++, &data), 0) << when;
      ASSERT_EQ(data, pattern(kBlock, static_cast<unsigned>(b))) << "block " << b << " " << when;
    }
  };
  for (std::uint64_t b = 0; b < size_ / kBlock; b += 61) {
    ASSERT_TRUE(raw_request(sock_, nbd::kCmdWrite, 0, b * kBlock, kBlock, cookie,
                            pattern(kBlock, static_cast<unsigned>(b))));
    ASSERT_EQ(raw_reply(sock_, cookie++), 0);
  }
  gpu(8ULL << 30);
  ASSERT_TRUE(wait_for([&] { return log().find("tier gpu evacuated:") != std::string::npos; }, 20s))
      << "no evacuation\n"
      << log();
  EXPECT_NE(log().find("rule \"foreign\""), std::string::npos) << log();
  check_all("while evacuated");
  gpu(0);
  ASSERT_TRUE(wait_for([&] { return log().find("tier gpu promoted:") != std::string::npos; }, 30s))
      << "not promoted back\n"
      << log();
  check_all("after the promote");

  write_config(false);
  ::kill(daemon_, SIGHUP);
  ASSERT_TRUE(wait_for([&] { return !fs::exists(root_ / "sys/block/nbd0/pid"); }, 30s)) << log();
  ASSERT_TRUE(raw_request(sock_, nbd::kCmdDisc, 0, 0, 0, cookie));
  ::close(sock_);
  sock_ = -1;
  EXPECT_TRUE(wait_for([&] { return ::kill(exporters[0], 0) != 0; }, 15s)) << log();
}

INSTANTIATE_TEST_SUITE_P(Host, VramPolicyFakeNvml, ::testing::Values("host"),
                         [](const auto& info) { return info.param; });

}  // namespace
