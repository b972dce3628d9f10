// Real kernel: apply zram + swap file + zswap + sysctls, check what the
// kernel reports, and prove that teardown, rollback (a fault at every step)
// and refused configs leave the machine exactly as it was.
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "backends/disk/disk.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "daemon/apply.hpp"
#include "daemon/engine.hpp"
#include "daemon/plan_file.hpp"
#include "machine_state.hpp"

extern char** environ;

using namespace tierswap;
using namespace tierswap::ktest;
using namespace std::chrono_literals;

namespace {

std::string config_yaml(const std::string& dir, int swappiness, int zram_prio = 100) {
  return "tiers:\n"
         "  - name: kt-zram\n"
         "    kind: zram\n"
         "    size: 128M\n"
         "    algorithm: [zstd, lz4]\n"
         "    mem_limit: 64M\n"
         "    priority: " +
         std::to_string(zram_prio) +
         "\n"
         "  - name: kt-file\n"
         "    kind: file\n"
         "    path: " +
         dir +
         "/kt.swap\n"
         "    size: 32M\n"
         "    priority: 10\n"
         "zswap:\n"
         "  max_pool_percent: 21\n"
         "  accept_threshold_percent: 80\n"
         "sysctl:\n"
         "  vm.swappiness: " +
         std::to_string(swappiness) +
         "\n"
         "  vm.page-cluster: 1\n";
}

std::vector<swap::SwapArea> areas() {
  const HostFs hfs("/");
  return *swap::parse_proc_swaps(*hfs.read(paths::proc_swaps));
}

std::string read_value(const std::string& p) {
  const HostFs hfs("/");
  auto v = hfs.read_value(p);
  return v ? *v : "<" + v.error().describe() + ">";
}

// The kernel's own mem_limit of a zram device, in bytes: the 4th field of
// mm_stat (the mem_limit attribute is write-only).
std::string kernel_mem_limit(const std::string& dev) {
  std::istringstream in(read_value(paths::block_attr(dev, "mm_stat")));
  std::string field;
  for (int i = 0; i < 4; ++i) in >> field;
  return field;
}

// The algorithm the planner picks from config_yaml()'s [zstd, lz4]: the
// first this kernel offers; empty when it offers neither.
std::string expected_algorithm(const std::vector<std::string>& offered) {
  for (const char* name : {"zstd", "lz4"})
    if (offers(offered, name)) return name;
  return {};
}

// A running tierswapd with its stderr in a file and its own NOTIFY_SOCKET.
class Daemon {
 public:
  // `bin`: tierswapd, or tierswapd-test for the --test-* seams.
  Daemon(const std::string& dir, std::vector<std::string> args, std::vector<std::string> env = {},
         const char* bin = TIERSWAPD_BIN)
      : log_(dir + "/tierswapd.log"), sock_path_(dir + "/notify.sock") {
    sock_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock_path_.c_str(), sizeof a.sun_path - 1);
    ::bind(sock_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    timeval tv{0, 100000};
    ::setsockopt(sock_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    args.insert(args.begin(), bin);
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<std::string> envs = {"NOTIFY_SOCKET=" + sock_path_, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    envs.insert(envs.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& s : envs) envp.push_back(s.data());
    envp.push_back(nullptr);
    if (posix_spawn(&pid_, bin, &fa, nullptr, argv.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Daemon() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGTERM);
      wait(20s);
    }
    ::close(sock_);
    ::unlink(sock_path_.c_str());
  }
  // The next notification datagram containing `what`, or "" on timeout.
  bool wait_notify(const std::string& what, std::chrono::seconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    char buf[512];
    while (std::chrono::steady_clock::now() < end) {
      const auto n = ::recv(sock_, buf, sizeof buf, 0);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).find(what) != std::string::npos) return true;
      if (exited()) return false;
    }
    return false;
  }
  bool wait_log(const std::string& what, std::chrono::seconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (log().find(what) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  bool exited() {
    if (exited_) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return exited_;
  }
  // Exit status, or -1 on timeout.
  int wait(std::chrono::seconds limit = 30s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!exited() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
    return exited_ ? status_ : -1;
  }
  void signal(int s) { ::kill(pid_, s); }
  std::string log() const { return slurp(log_); }
  pid_t pid() const { return pid_; }

 private:
  std::string log_, sock_path_;
  int sock_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = -1;
};

}  // namespace

class ApplyKernel : public KernelTest {};

TEST_F(ApplyKernel, EngineAppliesEveryKindAndTeardownRestores) {
  const auto offered = offered_zram_algorithms();
  const auto algorithm = expected_algorithm(offered);
  if (algorithm.empty())
    GTEST_SKIP() << "this kernel's zram offers neither zstd nor lz4: " << join_words(offered);
  const auto cfg = write_config(config_yaml(dir_, 133));
  Engine engine(EngineOptions{.config = cfg});
  auto r = engine.start();
  ASSERT_TRUE(r) << r.error().message;
  const auto j = engine.journal();
  ASSERT_EQ(j.tiers.size(), 2u);
  const auto& z = j.tiers[0].kind == "zram" ? j.tiers[0] : j.tiers[1];
  const auto a = areas();
  auto zarea = swap::find_area(a, z.swap_path);
  auto farea = swap::find_area(a, dir_ + "/kt.swap");
  ASSERT_TRUE(zarea);
  ASSERT_TRUE(farea);
  EXPECT_EQ(zarea->priority, 100);
  EXPECT_EQ(farea->priority, 10);
  EXPECT_EQ(farea->type, "file");
  EXPECT_EQ(read_value(paths::block_attr(z.device, "disksize")), std::to_string(128 << 20));
  EXPECT_EQ(kernel_mem_limit(z.device), std::to_string(64 << 20));
  EXPECT_EQ(z.mem_limit, 64u << 20);
  EXPECT_NE(read_value(paths::block_attr(z.device, "comp_algorithm")).find("[" + algorithm + "]"),
            std::string::npos)
      << read_value(paths::block_attr(z.device, "comp_algorithm"));
  EXPECT_EQ(read_value(paths::sysctl("vm.swappiness")), "133");
  EXPECT_EQ(read_value(paths::sysctl("vm.page-cluster")), "1");
  EXPECT_EQ(read_value(paths::zswap_param("max_pool_percent")), "21");
  EXPECT_EQ(read_value(paths::zswap_param("accept_threshold_percent")), "80");
  EXPECT_EQ(fs::status(dir_ + "/kt.swap").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  // Planning again against what was applied: nothing to do.
  auto again = engine.plan();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->empty());

  ASSERT_TRUE(engine.stop());
  EXPECT_FALSE(fs::exists(dir_ + "/kt.swap"));
  EXPECT_FALSE(fs::exists(paths::run_state_file));
}

TEST_F(ApplyKernel, DaemonReloadsOnSighupAndRestoresOnSigterm) {
  const auto offered = offered_zram_algorithms();
  if (expected_algorithm(offered).empty())
    GTEST_SKIP() << "this kernel's zram offers neither zstd nor lz4: " << join_words(offered);
  auto missing = zram_algorithm_not_offered(offered);
  if (missing.empty()) missing = "no-such-algorithm";
  const auto cfg = write_config(config_yaml(dir_, 133));
  Daemon d(dir_, {"--config", cfg});
  ASSERT_TRUE(d.wait_notify("READY=1")) << d.log();
  EXPECT_EQ(read_value(paths::sysctl("vm.swappiness")), "133");

  // Changed config: only the difference is applied.
  write_config(config_yaml(dir_, 134, 90));
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_log("reload: applied")) << d.log();
  EXPECT_EQ(read_value(paths::sysctl("vm.swappiness")), "134");
  int zram_prio = -1000;
  for (const auto& a : areas())
    if (a.path.starts_with("/dev/zram")) zram_prio = a.priority;
  EXPECT_EQ(zram_prio, 90);
  // The zram device was replaced (priority cannot change in place): still two areas.
  EXPECT_EQ(areas().size(), before_.swaps.size() + 2);

  // Unchanged: nothing to do.
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_log("reload: nothing to do")) << d.log();

  // A config that fails keeps the previous state running.
  write_config("tiers:\n  - name: bad\n    kind: zram\n    size: 64M\n    algorithm: " + missing + "\n");
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_log("reload failed; the previous state stays")) << d.log();
  EXPECT_EQ(read_value(paths::sysctl("vm.swappiness")), "134");
  EXPECT_FALSE(d.exited());

  d.signal(SIGTERM);
  EXPECT_TRUE(d.wait_notify("STOPPING=1")) << d.log();
  EXPECT_EQ(d.wait(), 0) << d.log();
}

TEST_F(ApplyKernel, FaultAtEveryStepLeavesTheMachineAsItWas) {
  const auto offered = offered_zram_algorithms();
  if (expected_algorithm(offered).empty())
    GTEST_SKIP() << "this kernel's zram offers neither zstd nor lz4: " << join_words(offered);
  const auto cfg = write_config(config_yaml(dir_, 133));
  const auto planned = plan_file(cfg, "/", stderr);
  ASSERT_TRUE(planned.ok);
  const size_t n = planned.plan.steps.size();
  ASSERT_GE(n, 8u);
  for (size_t step = 1; step <= n; ++step) {
    SCOPED_TRACE("tierswapd-test --test-fail-step " + std::to_string(step));
    Daemon d(dir_, {"--config", cfg, "--test-fail-step", std::to_string(step)}, {}, TIERSWAPD_TEST_BIN);
    EXPECT_EQ(d.wait(), 1) << d.log();
    EXPECT_NE(d.log().find("step " + std::to_string(step) + " of " + std::to_string(n)), std::string::npos)
        << d.log();
    EXPECT_EQ(snapshot(), before_) << d.log();
    EXPECT_FALSE(fs::exists(dir_ + "/kt.swap"));
  }
}

// Refused configs: a clear error naming the problem, exit 1, nothing applied.
class Refused : public KernelTest {
 protected:
  void expect_refused(const std::string& yaml, const std::string& message) {
    const auto cfg = write_config(yaml);
    Daemon d(dir_, {"--config", cfg});
    EXPECT_EQ(d.wait(), 1) << d.log();
    EXPECT_NE(d.log().find(message), std::string::npos) << d.log();
    EXPECT_EQ(snapshot(), before_);
  }
};

TEST_F(Refused, AlgorithmTheKernelLacks) {
  const auto offered = offered_zram_algorithms();
  const auto missing = zram_algorithm_not_offered(offered);
  if (missing.empty())
    GTEST_SKIP() << "this kernel's zram offers every algorithm tried: " << join_words(offered);
  expect_refused("tiers:\n  - name: z\n    kind: zram\n    size: 64M\n    algorithm: " + missing + "\n",
                 "tiers[0].algorithm: \"" + missing +
                     "\" is not offered by this kernel (this kernel offers: " + join_words(offered) + ")");
}

TEST_F(Refused, RecompressWithoutRecompAlgorithm) {
  if (fs::exists("/sys/block/zram0/recomp_algorithm")) GTEST_SKIP() << "this kernel has recomp_algorithm";
  expect_refused(
      "tiers:\n  - name: z\n    kind: zram\n    size: 64M\n    recompress:\n      algorithm: lz4\n",
      "recompression needs /sys/block/zram0/recomp_algorithm, which this kernel does not have");
}

TEST_F(Refused, FileUnderARegularFile) {
  write_config("not a directory\n", "plain");
  expect_refused("tiers:\n  - name: f\n    kind: file\n    path: " + dir_ + "/plain/t.swap\n    size: 32M\n",
                 "tiers[0].path: " + dir_ + "/plain is not a directory");
}

TEST_F(Refused, FileLargerThanFreeSpace) {
  expect_refused("tiers:\n  - name: f\n    kind: file\n    path: " + dir_ + "/t.swap\n    size: 100000G\n",
                 "bytes do not fit in the free space of " + dir_);
}

TEST_F(Refused, ExistingNonSwapFile) {
  spit(dir_ + "/t.swap", "precious\n");
  expect_refused("tiers:\n  - name: f\n    kind: file\n    path: " + dir_ + "/t.swap\n    size: 32M\n",
                 "exists and is not a swap file: tierswap never overwrites it");
  EXPECT_EQ(slurp(dir_ + "/t.swap"), "precious\n");
}

TEST_F(Refused, MountedPartition) {
  const HostFs hfs("/");
  std::string root_dev;
  for (const auto& m : disk::parse_mounts(*hfs.read(paths::proc_mounts)))
    if (m.target == "/" && m.source.starts_with("/dev/")) root_dev = m.source;
  if (root_dev.empty()) GTEST_SKIP() << "/ is not mounted from a /dev node here";
  expect_refused("tiers:\n  - name: p\n    kind: partition\n    device: " + root_dev + "\n",
                 root_dev + " is mounted on /: refusing to use it as swap");
}

TEST_F(Refused, ZswapCompressorTheKernelLacks) {
  // While zswap is off the kernel takes any name unchecked, so the planner
  // checks against /proc/crypto.
  expect_refused(
      "zswap:\n  compressor: no-such-compressor\nsysctl:\n  vm.swappiness: 99\n",
      "zswap.compressor: \"no-such-compressor\" is not a compressor this kernel has (/proc/crypto) "
      "(this kernel offers: ");
}

// A sysfs write the kernel refuses mid-apply (a plan made by hand: the
// planner would refuse the algorithm first): the error names the path, the value
// and the kernel's answer, and what ran before it is undone.
TEST_F(Refused, KernelRefusalMidApplyRollsBack) {
  const auto offered = offered_zram_algorithms();
  const auto missing = zram_algorithm_not_offered(offered);
  if (missing.empty())
    GTEST_SKIP() << "this kernel's zram offers every algorithm tried: " << join_words(offered);
  const std::string hint = "this kernel offers: " + join_words(offered);
  const HostFs hfs("/");
  swap::RealKernel kernel(hfs);
  Journal journal;
  Plan p;
  p.steps = {
      Step{.kind = "sysctl",
           .op = "write",
           .path = paths::sysctl("vm.swappiness"),
           .value = "99",
           .previous = before_.sysctl.at("vm.swappiness")},
      Step{.kind = "zram", .op = "zram_add", .tier = "kt"},
      Step{.kind = "zram",
           .op = "write",
           .tier = "kt",
           .path = paths::block_attr("{zram:kt}", "comp_algorithm"),
           .value = missing,
           .hint = hint},
  };
  Executor ex(hfs, kernel, journal);
  auto r = ex.apply(p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("comp_algorithm: \"" + missing + "\": Invalid argument (" + hint +
                                   "); undid 2 steps"),
            std::string::npos)
      << r.error().message;
  EXPECT_TRUE(journal.empty());
  EXPECT_EQ(snapshot(), before_);
}

// kill -9, the journal corrupted, a restart: the journal is set aside and
// tierswap's zram device is adopted by its swap label (one area, not two);
// SIGTERM then removes everything.
TEST_F(ApplyKernel, CorruptJournalAfterKill9IsSetAsideAndTheZramTierReadopted) {
  if (const auto offered = offered_zram_algorithms(); !offers(offered, "lz4"))
    GTEST_SKIP() << "this kernel's zram does not offer lz4: " << join_words(offered);
  const auto cfg = write_config(
      "tiers:\n  - name: kt-zram\n    kind: zram\n    size: 64M\n    algorithm: lz4\n    mem_limit: 32M\n"
      "    priority: 77\n");
  std::string dev;
  // Whatever happens below, the device this test made goes again.
  struct Guard {
    std::string* dev;
    ~Guard() {
      const HostFs hfs("/");
      if (dev->empty() || !hfs.exists(paths::block_attr(*dev))) return;
      ::swapoff(paths::dev_node(*dev).c_str());
      (void)zram::reset(hfs, *dev);
      (void)hfs.write(paths::zram_hot_remove, dev->substr(4));
    }
  } guard{&dev};
  const auto remove_set_aside = [] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(paths::run_state_dir, ec))
      if (e.path().filename().string().starts_with("state.json.invalid-")) fs::remove(e.path(), ec);
    fs::remove(paths::run_state_dir, ec);  // only when empty
  };
  std::size_t areas_up = 0, zram_up = 0;
  {
    Daemon d(dir_, {"--config", cfg, "--no-dbus"});
    ASSERT_TRUE(d.wait_notify("READY=1")) << d.log();
    auto j = load_journal(HostFs("/"));
    ASSERT_TRUE(j) << j.error().message;
    ASSERT_EQ(j->tiers.size(), 1u);
    dev = j->tiers[0].device;
    areas_up = areas().size();
    zram_up = zram::list_devices(HostFs("/")).size();
    d.signal(SIGKILL);
    ASSERT_EQ(d.wait(), 128 + SIGKILL);
  }
  spit(std::string(paths::run_state_file), "{\"version\": 1, \"tiers\": [{\"name\": \"kt-z");

  Daemon d(dir_, {"--config", cfg, "--no-dbus"});
  ASSERT_TRUE(d.wait_notify("READY=1")) << d.log();
  EXPECT_NE(d.log().find("set aside as /run/tierswap/state.json.invalid-"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("tier \"kt-zram\": /dev/" + dev + " carries tierswap's swap label and is active"),
            std::string::npos)
      << d.log();
  EXPECT_NE(d.log().find("applied: nothing to do"), std::string::npos) << d.log();
  EXPECT_EQ(areas().size(), areas_up);
  EXPECT_EQ(zram::list_devices(HostFs("/")).size(), zram_up);
  auto j = load_journal(HostFs("/"));
  ASSERT_TRUE(j) << j.error().message;
  ASSERT_EQ(j->tiers.size(), 1u);
  EXPECT_EQ(j->tiers[0].device, dev);
  EXPECT_EQ(j->tiers[0].mem_limit, 32u << 20);
  EXPECT_EQ(kernel_mem_limit(dev), std::to_string(32 << 20));

  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.log();
  EXPECT_FALSE(fs::exists(paths::block_attr(dev))) << d.log();
  EXPECT_FALSE(fs::exists(paths::run_state_file));
  remove_set_aside();
}
