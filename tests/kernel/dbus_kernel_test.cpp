// Real kernel, over a private bus: tierswapd with a zram tier (priority 100)
// holding real pages of a child process and a swap file (priority 10) below
// it; `tierswapctl demote` drains the zram tier into the file with progress,
// the child's data still verifies, `tierswapctl promote` puts it back at 100;
// a demote whose pages do not fit into the other areas is refused; SIGTERM
// during a demote aborts it and restores the machine, and kill -9 during a
// demote is followed by a restart that reconciles; the child's data
// verifies throughout.
//
// Pages get into swap through a memory cgroup with a small limit (cgroup v1
// memory.limit_in_bytes, or v2 memory.max); the test skips with the reason
// when neither exists or nothing lands in swap. The cgroup, the child, the
// daemon and everything it set up are removed on every exit path.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

#include "backends/swap/proc_swaps.hpp"
#include "backends/zram/zram.hpp"
#include "machine_state.hpp"
#include "policy/meminfo.hpp"
#include "tests/dbus/bus_fixture.hpp"

using namespace tierswap;
using namespace tierswap::ktest;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kChildBytes = 64u << 20;

std::uint64_t next(std::uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

// A child that fills kChildBytes with a pattern after "g" on its pipe, says
// "f", and on "v" checks the pattern and says "1" (same) or "0".
class PatternChild {
 public:
  PatternChild() {
    if (::pipe(to_) != 0 || ::pipe(from_) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      char c;
      if (::read(to_[0], &c, 1) != 1) ::_exit(2);
      auto* mem = static_cast<std::uint64_t*>(::malloc(kChildBytes));
      std::uint64_t x = 0x9e3779b97f4a7c15ull;
      for (std::size_t i = 0; i < kChildBytes / 8; ++i)
        mem[i] = next(x) & 0x0f0f0f0f0f0f0f0full;  // compresses ~2x
      if (::write(from_[1], "f", 1) != 1) ::_exit(2);
      if (::read(to_[0], &c, 1) != 1) ::_exit(2);
      x = 0x9e3779b97f4a7c15ull;
      bool same = true;
      for (std::size_t i = 0; i < kChildBytes / 8; ++i)
        same = same && mem[i] == (next(x) & 0x0f0f0f0f0f0f0f0full);
      (void)::write(from_[1], same ? "1" : "0", 1);
      ::_exit(0);
    }
  }
  ~PatternChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : {to_[0], to_[1], from_[0], from_[1]})
      if (fd >= 0) ::close(fd);
  }
  [[nodiscard]] pid_t pid() const { return pid_; }
  char ask(char c) {
    if (::write(to_[1], &c, 1) != 1) return '?';
    char r = '?';
    return ::read(from_[0], &r, 1) == 1 ? r : '?';
  }

 private:
  int to_[2] = {-1, -1}, from_[2] = {-1, -1};
  pid_t pid_ = -1;
};

// A memory cgroup with a small limit, removed (after its processes are gone)
// on destruction.
class MemCgroup {
 public:
  explicit MemCgroup(const std::string& name) {
    if (fs::exists("/sys/fs/cgroup/memory/cgroup.procs")) {
      dir_ = "/sys/fs/cgroup/memory/" + name;
      limit_file_ = "memory.limit_in_bytes";
    } else if (slurp("/sys/fs/cgroup/cgroup.controllers").find("memory") != std::string::npos) {
      dir_ = "/sys/fs/cgroup/" + name;
      limit_file_ = "memory.max";
    } else {
      why_ = "no memory cgroup (neither v1 /sys/fs/cgroup/memory nor v2 with the memory controller)";
      return;
    }
    std::error_code ec;
    fs::create_directory(dir_, ec);
    if (ec) {
      why_ = "cannot create " + dir_ + ": " + ec.message();
      dir_.clear();
    }
  }
  ~MemCgroup() {
    if (dir_.empty()) return;
    for (int i = 0; i < 50 && ::rmdir(dir_.c_str()) != 0; ++i) std::this_thread::sleep_for(100ms);
  }
  [[nodiscard]] const std::string& why_not() const { return why_; }
  bool limit(std::uint64_t bytes) {
    std::ofstream f(dir_ + "/" + limit_file_);
    f << bytes;
    f.flush();
    return f.good();
  }
  bool add(pid_t pid) {
    std::ofstream f(dir_ + "/cgroup.procs");
    f << pid;
    f.flush();
    return f.good();
  }

 private:
  std::string dir_, limit_file_, why_;
};

std::optional<swap::SwapArea> area(const std::string& path) {
  const HostFs hfs("/");
  auto a = swap::parse_proc_swaps(*hfs.read(paths::proc_swaps));
  return a ? swap::find_area(*a, path) : std::nullopt;
}

class DbusKernel : public KernelTest {
 protected:
  // file_mib 0: the zram tier alone.
  void start(std::uint64_t file_mib) {
    zram_dev_.clear();
    std::string yaml =
        "tiers:\n"
        "  - name: zram\n"
        "    kind: zram\n"
        "    size: 128M\n"
        "    algorithm: [lz4, lzo-rle, lzo]\n"
        "    priority: 100\n";
    if (file_mib > 0)
      yaml +=
          "  - name: file\n"
          "    kind: file\n"
          "    path: " +
          dir_ +
          "/kt-dbus.swap\n"
          "    size: " +
          std::to_string(file_mib) +
          "M\n"
          "    priority: 10\n";
    const auto cfg = write_config(yaml);
    const std::string cmd =
        std::string(TIERSWAPD_BIN) + " --config " + cfg + " --bus-address {address} {args}";
    ::setenv("TIERSWAP_DBUS_SERVER", cmd.c_str(), 1);
    bus_ = std::make_unique<test::TestBus>();
    svc_ = std::make_unique<test::Service>(*bus_);
    ::unsetenv("TIERSWAP_DBUS_SERVER");
    ASSERT_TRUE(svc_->ready()) << test::read_file(bus_->dir() + "/service.out");
    auto j = load_journal(HostFs("/"));
    ASSERT_TRUE(j);
    for (const auto& t : j->tiers)
      if (t.name == "zram") zram_dev_ = t.swap_path;
    ASSERT_FALSE(zram_dev_.empty());
  }
  // Puts the child's pages into swap (the zram tier, the highest priority).
  void fill() {
    if (!cg_.why_not().empty()) GTEST_SKIP() << cg_.why_not();
    child_ = std::make_unique<PatternChild>();
    ASSERT_GT(child_->pid(), 0);
    ASSERT_TRUE(cg_.limit(24u << 20));
    ASSERT_TRUE(cg_.add(child_->pid()));
    ASSERT_EQ(child_->ask('g'), 'f');
    auto a = area(zram_dev_);
    ASSERT_TRUE(a);
    if (a->used_kib < 8 * 1024) GTEST_SKIP() << "only " << a->used_kib << " KiB of the child went to swap";
  }
  void TearDown() override {
    if (demoter_.joinable()) demoter_.join();
    child_.reset();  // its pages first, so that teardown's swapoff has nothing of it to bring back
    svc_.reset();    // SIGTERM: tierswapd tears down
    bus_.reset();
    KernelTest::TearDown();
  }
  test::ProcResult ctl(std::vector<std::string> args) {
    args.insert(args.begin(), test::ctl_path());
    return test::run_process(args, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address()}, 120);
  }

  // Starts `tierswapctl demote zram` on a thread and waits until the
  // daemon's status says the tier is demoting; false when the demote ended
  // (or never began) before that was seen.
  bool demote_in_background() {
    demoter_ = std::thread([this] { demote_result_ = ctl({"demote", "zram"}); });
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto st = ctl({"status", "--json"});
      if (st.out.find("\"state\":\"demoting\"") != std::string::npos) return true;
      if (st.out.find("\"state\":\"drained\"") != std::string::npos) return false;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  // Waits for the daemon (our child) to exit: its wait status, -1 on timeout.
  int wait_daemon(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (::waitpid(svc_->pid(), &st, WNOHANG) == svc_->pid()) return st;
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }
  std::string daemon_log() const { return test::read_file(bus_->dir() + "/service.out"); }
  // zram devices that were not there before the test.
  std::vector<std::string> new_zram() {
    std::vector<std::string> out;
    for (const auto& z : zram::list_devices(HostFs("/")))
      if (std::find(before_.zram.begin(), before_.zram.end(), z) == before_.zram.end()) out.push_back(z);
    return out;
  }

  std::thread demoter_;
  test::ProcResult demote_result_;
  MemCgroup cg_{"tierswap-kt-" + std::to_string(::getpid())};
  std::unique_ptr<test::TestBus> bus_;
  std::unique_ptr<test::Service> svc_;
  std::unique_ptr<PatternChild> child_;
  std::string zram_dev_;
};

TEST_F(DbusKernel, DemoteDrainsIntoTheFileWithProgressThenPromote) {
  start(256);
  fill();
  if (IsSkipped() || HasFatalFailure()) return;
  const auto used = area(zram_dev_)->used_kib;
  auto d = ctl({"demote", "zram"});
  ASSERT_EQ(d.code, 0) << d.out << d.err << test::read_file(bus_->dir() + "/service.out");
  EXPECT_NE(d.err.find("zram: "), std::string::npos) << d.err;  // progress lines
  EXPECT_NE(d.err.find("100%"), std::string::npos) << d.err;
  EXPECT_NE(d.out.find("zram: demoted, drained in"), std::string::npos) << d.out;
  EXPECT_FALSE(area(zram_dev_)) << "still in /proc/swaps";
  auto st = ctl({"status", "--json"});
  EXPECT_NE(st.out.find("\"state\":\"drained\""), std::string::npos) << st.out;
  EXPECT_EQ(child_->ask('v'), '1') << "the child's data changed across the demote";
  RecordProperty("zram_used_kib_before_demote", std::to_string(used));

  auto p = ctl({"promote", "zram"});
  ASSERT_EQ(p.code, 0) << p.out << p.err;
  auto a = area(zram_dev_);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->priority, 100);
}

TEST_F(DbusKernel, DemoteRefusedWhenTheOtherAreasLackRoom) {
  start(4);  // a 4 MiB file cannot take what the child put into zram
  fill();
  if (IsSkipped() || HasFatalFailure()) return;
  auto d = ctl({"demote", "zram"});
  EXPECT_EQ(d.code, 1) << d.out << d.err;
  EXPECT_NE(d.err.find("NotEnoughMemory"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("the other swap areas have"), std::string::npos) << d.err;
  auto a = area(zram_dev_);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->priority, 100);
  EXPECT_EQ(child_->ask('v'), '1');
}

// Finding 9's rule counts RAM: stopping the daemon swaps off its last swap
// area when RAM can take the pages back, rather than keeping the area for
// a few MiB. The child's pages go to the zram tier (the only swap area)
// through its small cgroup limit; then the limit is raised, so the cgroup
// can take them back. SIGTERM: tierswapd exits 0, the area and its device
// are gone, the journal too, and the child's data verifies (swapoff brought
// it back). Skipped where RAM is short (MemAvailable below 1 GiB).
TEST_F(DbusKernel, StopSwapsOffTheLastAreaWhenRamCanTakeItsPages) {
  {
    const HostFs hfs("/");
    auto mi = policy::parse_meminfo(*hfs.read(paths::proc_meminfo));
    ASSERT_TRUE(mi);
    if (mi->mem_available() < (1ull << 30))
      GTEST_SKIP() << "MemAvailable " << (mi->mem_available() >> 20) << " MiB: RAM is short here";
  }
  start(0);
  fill();
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_TRUE(cg_.limit(1ull << 30));
  ASSERT_TRUE(area(zram_dev_)) << "the child's pages left swap before the stop";
  ASSERT_EQ(::kill(svc_->pid(), SIGTERM), 0);
  const int st = wait_daemon(120s);
  ASSERT_NE(st, -1) << "tierswapd did not exit within 120 s of SIGTERM\n" << daemon_log();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "wait status " << st << "\n" << daemon_log();
  EXPECT_FALSE(area(zram_dev_)) << "the last swap area was kept:\n" << daemon_log();
  EXPECT_FALSE(fs::exists(paths::run_state_file)) << daemon_log();
  EXPECT_TRUE(new_zram().empty()) << daemon_log();
  EXPECT_EQ(child_->ask('v'), '1') << "the child's data changed across the stop";
}

// SIGTERM while a demote drains the zram tier: the demote is aborted (its
// swapoff helper killed: the kernel keeps the area in use), then teardown
// swaps off what fits; what holds pages of the still running child that no
// remaining area can take stays, named by the journal, as the room rule
// (finding 9) says. Nothing of the child's memory is lost; once the child is
// gone, a restart adopts what stayed and its stop (TearDown) leaves the
// machine as it was (KernelTest).
TEST_F(DbusKernel, SigtermDuringADemoteAbortsItAndRestoresTheMachine) {
  start(256);
  fill();
  if (IsSkipped() || HasFatalFailure()) return;
  if (!demote_in_background()) GTEST_SKIP() << "the demote ended before it could be interrupted";
  ASSERT_EQ(::kill(svc_->pid(), SIGTERM), 0);
  const int st = wait_daemon(180s);
  ASSERT_NE(st, -1) << "tierswapd did not exit within 180 s of SIGTERM\n" << daemon_log();
  EXPECT_TRUE(WIFEXITED(st)) << "wait status " << st << "\n" << daemon_log();
  demoter_.join();
  EXPECT_NE(demote_result_.code, 0) << demote_result_.out << demote_result_.err;
  const std::string log = daemon_log();
  EXPECT_NE(log.find("stays active: swapoff of " + zram_dev_ + " aborted (tierswapd is stopping)"),
            std::string::npos)
      << log;
  // Whatever stayed is named by the journal, and the log says so.
  const bool kept = fs::exists(paths::run_state_file);
  EXPECT_EQ(kept, log.find("teardown did not restore everything") != std::string::npos) << log;
  if (kept) {
    auto j = load_journal(HostFs("/"));
    ASSERT_TRUE(j) << j.error().message;
    const HostFs hfs("/");
    auto areas = swap::parse_proc_swaps(*hfs.read(paths::proc_swaps));
    ASSERT_TRUE(areas);
    for (const auto& a : *areas)
      if (a.path == zram_dev_ || a.path.starts_with(dir_))
        EXPECT_TRUE(j->find_swap(a.path)) << a.path << " is active but not in the journal\n" << log;
  }
  EXPECT_EQ(child_->ask('v'), '1') << "the child's data changed\n" << log;
  // The child gone, a restart adopts what stayed; TearDown's SIGTERM removes all.
  child_.reset();
  svc_.reset();
  bus_.reset();
  start(256);
}

// kill -9 while a demote drains the zram tier: the swapoff helper dies with
// the daemon (PR_SET_PDEATHSIG), so the kernel keeps the area; a restart
// adopts what the journal names (no second zram device or swap area), the
// child's data verifies, and the restart's SIGTERM (TearDown) restores the
// machine.
TEST_F(DbusKernel, Kill9DuringADemoteThenARestartReconciles) {
  start(256);
  fill();
  if (IsSkipped() || HasFatalFailure()) return;
  const std::string zram_before = zram_dev_;
  if (!demote_in_background()) GTEST_SKIP() << "the demote ended before it could be interrupted";
  ASSERT_EQ(::kill(svc_->pid(), SIGKILL), 0);
  ASSERT_NE(wait_daemon(60s), -1);
  demoter_.join();
  const std::string first_log = daemon_log();
  ASSERT_TRUE(fs::exists(paths::run_state_file)) << first_log;
  ASSERT_TRUE(cg_.limit(1u << 30));  // the final teardown's swapoffs bring the pages back
  svc_.reset();
  bus_.reset();
  start(256);
  if (HasFatalFailure()) return;
  const std::string log = daemon_log();
  EXPECT_EQ(new_zram().size(), 1u) << log;
  auto z = area(zram_dev_);
  ASSERT_TRUE(z) << log;
  EXPECT_EQ(z->priority, 100) << log;
  EXPECT_TRUE(area(dir_ + "/kt-dbus.swap")) << log;
  auto st = ctl({"status", "--json"});
  EXPECT_NE(st.out.find("\"state\":\"active\""), std::string::npos) << st.out;
  EXPECT_EQ(child_->ask('v'), '1') << "the child's data changed\n" << first_log << log;
  RecordProperty("zram_device_before_and_after", zram_before + " " + zram_dev_);
}

}  // namespace
