// `tierswapctl bench` on the real kernel (label kernel): two groups, zram
// alone and a swap file alone, a short load each. The report must have both
// groups with pages really swapped out and every page verified, and the
// machine must be as before: swap areas, zram devices, sysctls, zswap
// (KernelTest's snapshot) and no cgroup left behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/swap/report.hpp"
#include "bench/swap/samples.hpp"
#include "tests/kernel/machine_state.hpp"
#include "tests/unit/run_command.hpp"

namespace tierswap::ktest {
namespace {

// Every cgroup directory directly under a cgroup mount (v1 and v2).
std::vector<std::string> cgroups() {
  std::vector<std::string> out;
  std::istringstream mounts(slurp("/proc/self/mounts"));
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest)) {
    if (type != "cgroup" && type != "cgroup2") continue;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_directory()) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class BenchKernelTest : public KernelTest {};

TEST_F(BenchKernelTest, ZramAndSwapFileGroupsSwapAndRestoreTheMachine) {
  if (test::run_command("command -v fio").code != 0)
    GTEST_SKIP() << "fio is not installed (Debian package fio)";
  const auto cg_before = cgroups();
  const fs::path out = fs::path(dir_) / "report";
  const std::string cmd = std::string(TIERSWAPCTL) +
                          " bench zram disk --yes --seconds 4 --raw-seconds 1 --raw-size 8M" +
                          " --memory 96M --working-set 160M --swap-dir " + dir_ + " --output " +
                          out.string() + " --tierswapd " + TIERSWAPD_BIN;
  const auto r = test::run_command(cmd);
  ASSERT_EQ(r.code, 0) << cmd << "\n" << r.output;

  auto rep = bench::report_from_json(slurp(out / "report.json"));
  ASSERT_TRUE(rep) << rep.error().describe();
  ASSERT_EQ(rep->groups.size(), 2u);
  EXPECT_EQ(rep->groups[0].name, "zram");
  EXPECT_EQ(rep->groups[1].name, "disk");
  for (const auto& g : rep->groups) {
    SCOPED_TRACE(g.name);
    EXPECT_EQ(g.status, "ok") << g.error;
    ASSERT_EQ(g.areas.size(), 1u);
    EXPECT_EQ(g.hog.bad_pages, 0u);
    EXPECT_EQ(g.hog.pages, (160u << 20) / 4096);  // --working-set 160M
    EXPECT_GT(bench::summarize(g.samples).swapout_mib, 0) << "nothing was swapped out";
    EXPECT_GE(g.samples.size(), 5u);
    EXPECT_FALSE(g.probe_us.empty());
    EXPECT_FALSE(g.raw.empty()) << "no raw-device figures";
  }
  EXPECT_NE(rep->groups[0].areas[0].find("/dev/zram"), std::string::npos);
  EXPECT_EQ(fs::path(rep->groups[1].areas[0]).parent_path(), fs::path(dir_));
  for (const char* f : {"report.md", "latency-cdf.svg", "latency-cdf.png", "psi.svg", "psi.png"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_EQ(cgroups(), cg_before) << "a cgroup was left behind";
  // The scratch file fio wrote beside the swap file is gone too.
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tierswap-bench-fio"), std::string::npos) << e.path();
}

// Ctrl-C while the hog swaps: the hog is killed, the cgroup removed, and
// tierswapd takes the zram tier down again.
TEST_F(BenchKernelTest, InterruptDuringTheLoadRestoresTheMachine) {
  const auto cg_before = cgroups();
  const fs::path out = fs::path(dir_) / "report";
  const std::string cmd = std::string(TIERSWAPCTL) + " bench zram --yes --seconds 60 --raw-seconds 0" +
                          " --memory 32M --working-set 64M --output " + out.string() + " --tierswapd " +
                          TIERSWAPD_BIN;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>" + dir_ + "/stderr").c_str(), nullptr);
    ::_exit(127);
  }
  // Wait for the load: a bench cgroup appears once the hog is about to run.
  bool loaded = false;
  for (int i = 0; i < 600 && !loaded; ++i) {
    for (const auto& c : cgroups())
      loaded = loaded || fs::path(c).filename().string().starts_with("tierswap-bench-");
    if (!loaded) ::usleep(50'000);
  }
  ::usleep(500'000);
  ::kill(pid, SIGINT);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(loaded) << "the load never started: " << slurp(fs::path(dir_) / "stderr");
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 1);
  EXPECT_NE(
      slurp(fs::path(dir_) / "stderr").find("interrupted; the hog, its cgroup and tierswapd are stopped"),
      std::string::npos)
      << slurp(fs::path(dir_) / "stderr");
  EXPECT_EQ(cgroups(), cg_before) << "a cgroup was left behind";
  // TearDown compares swap areas, zram devices, sysctls and zswap.
}

}  // namespace
}  // namespace tierswap::ktest
