// PSI triggers on this machine's real /proc/pressure (label kernel): the
// daemon's trigger is accepted and its fd is pollable; the 2 s window rule
// holds exactly as this process's CAP_SYS_RESOURCE says; and a trigger on
// io stall wakes an sd-event loop through PsiTriggers when the kernel's own
// io stall total shows a stall within the window.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "daemon/psi_triggers.hpp"
#include "policy/psi.hpp"

namespace tierswap {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool has_cap_sys_resource() {
  std::istringstream in(slurp("/proc/self/status"));
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("CapEff:"))
      return (std::stoull(line.substr(7), nullptr, 16) >> 24) & 1;  // CAP_SYS_RESOURCE
  return false;
}

std::uint64_t io_some_total_us() {
  auto p = policy::parse_psi(slurp("/proc/pressure/io"), "/proc/pressure/io");
  return p ? p->some.total_us : 0;
}

class PsiTriggerKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/proc/pressure/memory") || !fs::exists("/proc/pressure/io"))
      GTEST_SKIP() << "no /proc/pressure on this kernel (psi=0 or CONFIG_PSI off)";
  }
};

TEST_F(PsiTriggerKernel, TheDaemonsTriggerIsAcceptedAndItsFdIsPollable) {
  for (const char* path : {"/proc/pressure/memory", "/proc/pressure/io"}) {
    auto fd = open_psi_trigger(path, {false, 150'000, 2'000'000});
    ASSERT_TRUE(fd) << fd.error().describe();
    pollfd p{*fd, POLLPRI, 0};
    const int n = ::poll(&p, 1, 0);
    EXPECT_GE(n, 0) << path;
    EXPECT_EQ(p.revents & (POLLERR | POLLNVAL), 0) << path << ": revents " << p.revents;
    ::close(*fd);
  }
}

TEST_F(PsiTriggerKernel, AOneSecondWindowNeedsCapSysResource) {
  auto fd = open_psi_trigger("/proc/pressure/memory", {false, 100'000, 1'000'000});
  if (has_cap_sys_resource()) {
    ASSERT_TRUE(fd) << fd.error().describe();
    ::close(*fd);
  } else {
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().code, EINVAL);
    EXPECT_NE(fd.error().message.find("multiple of 2 s"), std::string::npos) << fd.error().message;
  }
}

TEST_F(PsiTriggerKernel, APlainFileIsNotArmed) {
  char tmpl[] = "/tmp/tierswap-psi-XXXXXX";
  const int t = ::mkstemp(tmpl);
  ASSERT_GE(t, 0);
  ::write(t, "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 47);
  ::close(t);
  auto fd = open_psi_trigger(tmpl, {false, 150'000, 2'000'000});
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.error().code, ENOTSUP);
  EXPECT_EQ(slurp(tmpl), "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n") << "the file was written";
  ::unlink(tmpl);
}

TEST_F(PsiTriggerKernel, AnIoStallWakesTheLoop) {
  sd_event* loop = nullptr;
  ASSERT_GE(sd_event_new(&loop), 0);
  std::vector<std::string> events;
  PsiTriggers::Options o;
  o.trigger = {false, 1, 2'000'000};  // any io stall within 2 s
  const HostFs root("/");
  auto triggers = PsiTriggers::arm(
      loop, root, [&](const std::string& r) { events.push_back(r); }, o);
  ASSERT_EQ(triggers->armed(), 2u);
  // Stall on io: write and fsync a file in a loop beside the test.
  std::atomic<bool> stop = false;
  const std::string file = fs::temp_directory_path() / ("tierswap-psi-io-" + std::to_string(::getpid()));
  std::thread writer([&] {
    std::vector<char> block(1 << 20, 'x');
    while (!stop) {
      const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) return;
      for (int i = 0; i < 8; ++i) (void)!::write(fd, block.data(), block.size());
      ::fsync(fd);
      ::close(fd);
    }
  });
  const std::uint64_t before = io_some_total_us();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end &&
         std::find(events.begin(), events.end(), "io") == events.end())
    sd_event_run(loop, 200'000);
  const std::uint64_t after = io_some_total_us();
  stop = true;
  writer.join();
  ::unlink(file.c_str());
  triggers.reset();
  sd_event_unref(loop);
  if (after == before) GTEST_SKIP() << "no io stall in 10 s of writes and fsyncs (io some total unchanged)";
  EXPECT_NE(std::find(events.begin(), events.end(), "io"), events.end())
      << "io some total grew by " << (after - before) << " us, but the trigger did not wake the loop";
}

}  // namespace
}  // namespace tierswap
