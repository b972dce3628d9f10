// The vram kind's stop_exporter step on real processes: an exporter counts
// as gone only once it can be reaped. A thread-group leader that returned
// while its other threads still run (CUDA's, releasing the VRAM) shows as a
// zombie in /proc but is not gone yet; the step waits for it and reaps it
// (found on the H200: the step returned at once and left it unreaped).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "backends/hostfs/host_fs.hpp"
#include "backends/vram/vram_kind.hpp"
#include "tests/support/recording_kernel.hpp"

namespace tierswap {
namespace {

using namespace std::chrono_literals;

TEST(VramStopExporter, WaitsUntilAnExitingLeaderWithLiveThreadsCanBeReaped) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::thread([] {
      ::usleep(700'000);
      ::_exit(0);
    }).detach();
    ::syscall(SYS_exit, 0);  // only the leader ends: /proc shows it as a zombie
  }
  std::this_thread::sleep_for(150ms);
  HostFs fs;
  swap::RecordingKernel kernel;
  std::map<std::string, std::string> bindings;
  ExecContext ctx{fs, kernel, bindings};
  Step s{.kind = "vram", .op = "stop_exporter", .tier = "gpu", .path = std::to_string(pid) + ":0"};
  const auto t0 = std::chrono::steady_clock::now();
  auto r = vram::tier_kind().execute(s, ctx);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms) << "returned before the last thread ended";
  EXPECT_NE(::kill(pid, 0), 0) << "the exporter was left unreaped";
  ::waitpid(pid, nullptr, 0);
}

}  // namespace
}  // namespace tierswap
