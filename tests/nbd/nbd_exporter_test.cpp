// tierswap-nbd as the daemon runs it: connections handed over as --fd
// socketpairs (several at once), the default number of connection slots,
// the production memory locking (no --no-mlock), and the pipelined path
// (--pipeline, which the auto default leaves off on small machines).
#include <gtest/gtest.h>
#include <sched.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/nbd/nbd_test_util.hpp"

using namespace nbdtest;

namespace {

// Writes then reads back `n` pattern blocks at distinct offsets; true when
// every block comes back as written.
bool write_read_check(int fd, unsigned seed, std::uint64_t base, unsigned n = 8, std::uint32_t len = 65536) {
  for (unsigned i = 0; i < n; ++i) {
    const auto data = pattern(len, seed + i);
    if (!raw_request(fd, nbd::kCmdWrite, 0, base + i * std::uint64_t{len}, len, i, data)) return false;
    if (raw_reply(fd, i) != 0) return false;
  }
  for (unsigned i = 0; i < n; ++i) {
    std::vector<std::byte> back(len);
    if (!raw_request(fd, nbd::kCmdRead, 0, base + i * std::uint64_t{len}, len, 100 + i)) return false;
    if (raw_reply(fd, 100 + i, &back) != 0 || back != pattern(len, seed + i)) return false;
  }
  return true;
}

unsigned cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<unsigned>(CPU_COUNT(&set));
}

// The daemon hands the exporter connected socketpairs, no listening socket:
// each is served, they share the export, and the exporter exits 0 once the
// last one ends.
TEST(FdHandOver, SeveralSocketpairsAreServedAndTheExporterExitsAfterTheLast) {
  constexpr int kN = 3;
  int ours[kN], theirs[kN];
  for (int i = 0; i < kN; ++i) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ours[i] = sv[0];
    theirs[i] = sv[1];
  }
  Exporter ex;
  ASSERT_TRUE(ex.start({"--fd", "3", "--fd", "4", "--fd", "5"}, "host", "16M", false,
                       {theirs[0], theirs[1], theirs[2]}));
  for (int fd : theirs) ::close(fd);
  for (int i = 0; i < kN; ++i) ASSERT_EQ(raw_go(ours[i]), ours[i]) << "fd " << 3 + i << ": " << ex.log();
  for (int i = 0; i < kN; ++i)
    EXPECT_TRUE(write_read_check(ours[i], 10U * i, static_cast<std::uint64_t>(i) << 20)) << ex.log();
  // What one connection wrote, another reads.
  std::vector<std::byte> back(65536);
  ASSERT_TRUE(raw_request(ours[2], nbd::kCmdRead, 0, 0, 65536, 7));
  ASSERT_EQ(raw_reply(ours[2], 7, &back), 0);
  EXPECT_TRUE(back == pattern(65536, 0));
  ::close(ours[0]);
  ::close(ours[1]);
  EXPECT_EQ(ex.wait_exit(500), -1) << "exited while --fd 5 was still connected";
  EXPECT_TRUE(write_read_check(ours[2], 99, 8 << 20));
  ::close(ours[2]);
  const int st = ex.wait_exit(5000);
  ASSERT_NE(st, -1) << ex.log();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << ex.log();
  EXPECT_NE(ex.log().find("every --fd connection has ended"), std::string::npos) << ex.log();
}

// An --fd that is not a connected socket is refused at start, naming the fd.
TEST(FdHandOver, AnFdThatIsNotAConnectedSocketIsRefused) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  const int listening = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listening, 0);
  TempDir d;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, (d.path + "/l").c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(listening, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listening, 1), 0);
  const std::vector<std::pair<int, std::string>> cases = {{p[0], "--fd 3: not an open socket"},
                                                          {listening, "--fd 3: not a connected socket"}};
  for (const auto& [fd, message] : cases) {
    Exporter ex;
    ex.start({"--fd", "3"}, "host", "16M", false, {fd});
    const int st = ex.wait_exit(5000);
    ASSERT_NE(st, -1) << ex.log();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << ex.log();
    EXPECT_NE(ex.log().find(message), std::string::npos) << ex.log();
  }
  ::close(p[0]);
  ::close(p[1]);
  ::close(listening);
}

// Without --connections there is one slot per CPU, up to 16: that many
// clients are served at once, one more is refused.
TEST(Connections, DefaultIsOnePerCpuUpTo16) {
  const unsigned want = std::min(cpus(), 16U);
  Exporter ex;
  ASSERT_TRUE(ex.start()) << ex.log();
  std::vector<int> fds;
  for (unsigned i = 0; i < want; ++i) {
    const int fd = raw_connect_go(ex.socket);
    ASSERT_GE(fd, 0) << "client " << i + 1 << " of " << want << " refused: " << ex.log();
    fds.push_back(fd);
  }
  const int extra = unix_connect(ex.socket);
  EXPECT_TRUE(closed_by_server(extra)) << "client " << want + 1 << " was served with " << want << " CPUs";
  ::close(extra);
  EXPECT_NE(ex.log().find(std::to_string(want) + " connection slots"), std::string::npos) << ex.log();
  for (int fd : fds) ::close(fd);
}

struct Vma {
  std::string header;
  std::uint64_t size_kb = 0, rss_kb = 0, locked_kb = 0;
  std::string flags;
};

std::vector<Vma> smaps(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps");
  std::vector<Vma> out;
  std::string line;
  while (std::getline(f, line)) {
    auto field = [&](const char* name) -> std::uint64_t* {
      if (out.empty() || line.rfind(name, 0) != 0) return nullptr;
      Vma& v = out.back();
      if (std::string(name) == "Size:") return &v.size_kb;
      if (std::string(name) == "Rss:") return &v.rss_kb;
      return &v.locked_kb;
    };
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 17) {
      out.push_back({line});
    } else if (auto* p = field("Size:")) {
      *p = std::stoull(line.substr(5));
    } else if (auto* p = field("Rss:")) {
      *p = std::stoull(line.substr(4));
    } else if (auto* p = field("Locked:")) {
      *p = std::stoull(line.substr(7));
    } else if (!out.empty() && line.rfind("VmFlags:", 0) == 0) {
      out.back().flags = line.substr(8) + " ";
    }
  }
  return out;
}

// The production path (no --no-mlock): memory is locked on fault
// (MCL_ONFAULT: VMAs flagged "lf"), while the exporter's own code is locked
// whole and the export and every payload buffer are resident and locked
// before the first request of their connection slot (slot 0's at start, the
// others' when a client first takes the slot); then it serves checksummed
// I/O.
TEST(ProductionMlock, LocksOnFaultWithTheIoPathResident) {
  if (TIERSWAP_SANITIZED_TREE)
    GTEST_SKIP() << "built with a sanitizer, whose runtime answers mlockall with success and locks nothing";
  Exporter ex;
  ex.mlock = true;
  if (!ex.start({"--connections", "4", "--buffer", "1M"}, "host", "32M")) {
    ex.wait_exit(3000);
    if (ex.log().find("mlockall") != std::string::npos || ex.log().find("mlock(") != std::string::npos)
      GTEST_SKIP() << "memory cannot be locked here: " << ex.log();
    FAIL() << ex.log();
  }
  const auto vmas = smaps(ex.pid);
  ASSERT_FALSE(vmas.empty());
  std::uint64_t locked = 0;
  bool on_fault = false, text_whole = false;
  for (const Vma& v : vmas) {
    locked += v.locked_kb;
    on_fault = on_fault || v.flags.find(" lf ") != std::string::npos;
    if (v.header.find(" r-xp ") != std::string::npos && v.header.ends_with("/tierswap-nbd"))
      // Locked: is a proportional share (other tierswap-nbd processes map
      // the same text), so check the flags and residency instead.
      text_whole = v.flags.find(" lo ") != std::string::npos && v.rss_kb == v.size_kb && v.size_kb > 0;
  }
  EXPECT_TRUE(on_fault) << "no VMA is locked on fault (mlockall without MCL_ONFAULT?)";
  EXPECT_TRUE(text_whole) << "tierswap-nbd's code is not locked whole";
  // The 32 MiB export and slot 0's 1 MiB payload buffer (private: their
  // share is whole), at least. The other slots' buffers come with their
  // first client.
  EXPECT_GE(locked, (32U + 1U) << 10) << "KiB locked";
  const int fd = raw_connect_go(ex.socket);
  ASSERT_GE(fd, 0) << ex.log();
  EXPECT_TRUE(write_read_check(fd, 5, 0, 16));
  // A second client at once takes slot 1: its buffers are allocated and
  // locked (resident) before it is served.
  const int fd2 = raw_connect_go(ex.socket);
  ASSERT_GE(fd2, 0) << ex.log();
  std::uint64_t locked2 = 0;
  for (const Vma& v : smaps(ex.pid)) locked2 += v.locked_kb;
  EXPECT_GE(locked2, locked + 1024) << "KiB locked before and after a second client";
  EXPECT_TRUE(write_read_check(fd2, 6, 1 << 20, 16));
  ::close(fd2);
  ::close(fd);
}

// --pipeline on (the auto default turns it off below 8 CPUs, so CI would
// never run it otherwise): fio with crc32c over two connections, mixed sizes
// above and below the pipeline threshold.
TEST(Pipeline, OnServesVerifiedMixedIo) {
  if (!have_tool("fio")) GTEST_SKIP() << "fio is not installed";
  for (const char* store : {"host", "host-batch"}) {
    Exporter ex;
    ASSERT_TRUE(ex.start({"--pipeline", "64K", "--connections", "2"}, store, "32M")) << ex.log();
    const std::string cmd = "cd " + ex.dir.path +
                            " && fio --name=pipe --ioengine=nbd --uri='nbd+unix:///?socket=" + ex.socket +
                            "' --rw=randrw --rwmixread=50 --bssplit=4k/40:64k/30:256k/30 --size=8M"
                            " --offset_increment=8M --numjobs=2 --iodepth=16 --verify=crc32c --do_verify=1"
                            " --verify_fatal=1 --verify_backlog=32 --time_based --runtime=1"
                            " --output-format=terse --terse-version=3 >" +
                            ex.dir.path + "/fio.out 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream f(ex.dir.path + "/fio.out");
    const std::string out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(rc, 0) << store << ": " << out << ex.log();
    EXPECT_EQ(out.find("verify:"), std::string::npos) << out;
    EXPECT_NE(out.find(";pipe;0;0;"), std::string::npos) << "no error-free terse line: " << out;
    EXPECT_TRUE(ex.alive()) << ex.log();
  }
}

}  // namespace
