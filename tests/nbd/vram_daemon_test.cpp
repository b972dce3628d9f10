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

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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

std::string config(const std::string& store, bool with_tier) {
  std::string c = "tiers:\n";
  if (with_tier)
    c += "  - name: gpu\n    kind: vram\n    size: 1G\n    store: " + store +
         "\n    connections: 1\n    priority: 50\n";
  return c;
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
    fs::resize_file(root_ / "dev/nbd0", kSize);
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
    std::ofstream(root_ / "etc/tierswap.yaml", std::ios::trunc) << config(store_, with_tier);
  }
  void start() {
    daemon_ = ::fork();
    if (daemon_ == 0) {
      const std::string exe = bin_dir() + "/tierswapd-test", root = root_.string(),
                        cfg = (root_ / "etc/tierswap.yaml").string(), handoff = (root_ / "handoff").string(),
                        log = (root_ / "tierswapd.log").string();
      std::freopen(log.c_str(), "w", stderr);
      ::execl(exe.c_str(), exe.c_str(), "--root", root.c_str(), "--config", cfg.c_str(), "--no-dbus",
              "--test-fake-kernel", "--test-nbd-handoff", handoff.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  std::string log() { return slurp(root_ / "tierswapd.log"); }
  bool swapped_on() { return slurp(root_ / "proc/swaps").find("/dev/nbd0") != std::string::npos; }

  std::string store_;
  fs::path root_;
  int listener_ = -1, sock_ = -1;
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
  fs::create_directory_symlink("/proc/" + std::to_string(exporter),
                               root_ / "proc" / std::to_string(exporter));

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

}  // namespace
