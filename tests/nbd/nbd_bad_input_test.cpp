// Bad input over a raw socket (what libnbd refuses to send): each gets the
// answer proto.md asks for, the export is unchanged, and the server keeps
// serving other clients. Also the process-level guarantees: socket
// permissions, SO_PEERCRED, connection limit, SIGTERM refusal.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>

#include "tests/nbd/nbd_test_util.hpp"

using namespace nbdtest;

namespace {

constexpr std::uint64_t kSize = 64ULL << 20;
constexpr int kHandshakeMs = 1000;  // --handshake-timeout of the BadInput exporter (loaded CI: not less)

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ex.start({"--reply-timeout", "1000", "--handshake-timeout", std::to_string(kHandshakeMs),
                          "--connections", "8"},
                         "host", "64M"))
        << ex.log();
    // A known pattern at [0, 64K) that no bad request may change.
    ctl = raw_connect_go(ex.socket);
    ASSERT_GE(ctl, 0);
    ASSERT_TRUE(raw_request(ctl, nbd::kCmdWrite, 0, 0, 65536, 1, golden));
    ASSERT_EQ(raw_reply(ctl, 1), 0);
  }
  void TearDown() override {
    // Still serving, content unchanged.
    std::vector<std::byte> back(65536);
    ASSERT_TRUE(raw_request(ctl, nbd::kCmdRead, 0, 0, 65536, 2));
    ASSERT_EQ(raw_reply(ctl, 2, &back), 0);
    EXPECT_TRUE(back == golden);
    std::vector<std::byte> tail(512);
    ASSERT_TRUE(raw_request(ctl, nbd::kCmdRead, 0, kSize - 512, 512, 3));
    ASSERT_EQ(raw_reply(ctl, 3, &tail), 0);
    EXPECT_TRUE(tail == std::vector<std::byte>(512));
    ::close(ctl);
    EXPECT_TRUE(ex.alive()) << ex.log();
  }
  // A fresh connection in transmission.
  int conn() {
    const int fd = raw_connect_go(ex.socket);
    EXPECT_GE(fd, 0);
    return fd;
  }
  Exporter ex;
  int ctl = -1;
  std::vector<std::byte> golden = pattern(65536, 42);
};

TEST_F(BadInput, PastTheEndIsEinvalForReadsAndEnospcForWrites) {
  const int fd = conn();
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, 0, kSize - 512, 1024, 10));
  EXPECT_EQ(raw_reply(fd, 10), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, 0, kSize, 512, 11));
  EXPECT_EQ(raw_reply(fd, 11), EINVAL);
  // The payload is drained: the next request on the connection works.
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWrite, 0, kSize - 512, 1024, 12, pattern(1024, 1)));
  EXPECT_EQ(raw_reply(fd, 12), ENOSPC);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWriteZeroes, 0, kSize, 4096, 13));
  EXPECT_EQ(raw_reply(fd, 13), ENOSPC);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdTrim, 0, kSize - 4096, 8192, 14));
  EXPECT_EQ(raw_reply(fd, 14), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdFlush, 0, 0, 0, 15));
  EXPECT_EQ(raw_reply(fd, 15), 0);
  ::close(fd);
}

TEST_F(BadInput, OffsetPlusLengthOverflowing64Bits) {
  const int fd = conn();
  const std::uint64_t off = ~std::uint64_t{0} - 511;  // aligned, and + length wraps
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, 0, off, 1024, 20));
  EXPECT_EQ(raw_reply(fd, 20), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWrite, 0, off, 1024, 21, pattern(1024, 2)));
  EXPECT_EQ(raw_reply(fd, 21), ENOSPC);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWriteZeroes, 0, off & ~std::uint64_t{4095}, 0xFFFFF000U, 22));
  EXPECT_EQ(raw_reply(fd, 22), ENOSPC);
  ::close(fd);
}

TEST_F(BadInput, ZeroLengthAndMisalignedAreEinval) {
  const int fd = conn();
  std::uint64_t c = 30;
  for (std::uint16_t type : {nbd::kCmdRead, nbd::kCmdTrim, nbd::kCmdWriteZeroes}) {
    EXPECT_TRUE(raw_request(fd, type, 0, 0, 0, c));
    EXPECT_EQ(raw_reply(fd, c), EINVAL) << type;
    ++c;
  }
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, 0, 100, 512, c));
  EXPECT_EQ(raw_reply(fd, c++), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, 0, 0, 100, c));
  EXPECT_EQ(raw_reply(fd, c++), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWrite, 0, 4, 512, c, pattern(512, 3)));
  EXPECT_EQ(raw_reply(fd, c++), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWrite, 0, 0, 700, c, pattern(700, 3)));
  EXPECT_EQ(raw_reply(fd, c++), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWriteZeroes, 0, 512, 100, c));
  EXPECT_EQ(raw_reply(fd, c++), EINVAL);
  ::close(fd);
}

TEST_F(BadInput, UnknownCommandAndFlagsAreEinval) {
  const int fd = conn();
  EXPECT_TRUE(raw_request(fd, 99, 0, 0, 512, 40));
  EXPECT_EQ(raw_reply(fd, 40), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdBlockStatus, 0, 0, 512, 41));
  EXPECT_EQ(raw_reply(fd, 41), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, 0x8000, 0, 512, 42));
  EXPECT_EQ(raw_reply(fd, 42), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, nbd::kCmdFlagDf, 0, 512, 43));
  EXPECT_EQ(raw_reply(fd, 43), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWrite, nbd::kCmdFlagNoHole, 0, 512, 44, pattern(512, 4)));
  EXPECT_EQ(raw_reply(fd, 44), EINVAL);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWriteZeroes, nbd::kCmdFlagFastZero, 0, 512, 45));
  EXPECT_EQ(raw_reply(fd, 45), EINVAL);
  // FUA on a read is allowed and harmless.
  std::vector<std::byte> back(512);
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, nbd::kCmdFlagFua, 0, 512, 46));
  EXPECT_EQ(raw_reply(fd, 46, &back), 0);
  ::close(fd);
}

TEST_F(BadInput, LengthAboveTheMaximum) {
  const int fd = conn();
  EXPECT_TRUE(raw_request(fd, nbd::kCmdRead, 0, 0, (32U << 20) + 512, 50));
  EXPECT_EQ(raw_reply(fd, 50), EINVAL);
  // A write this long is answered, then the connection dropped (its payload
  // is not worth draining).
  EXPECT_TRUE(raw_request(fd, nbd::kCmdWrite, 0, 0, 0xFFFFFE00U, 51));
  EXPECT_EQ(raw_reply(fd, 51), EINVAL);
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
}

TEST_F(BadInput, BadRequestMagicClosesTheConnection) {
  const int fd = conn();
  std::byte junk[28];
  std::memset(junk, 0x5a, sizeof junk);
  ASSERT_TRUE(send_all(fd, junk, sizeof junk));
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
}

TEST_F(BadInput, ClientGoneMidPayloadWritesNothing) {
  const int fd = conn();
  // Header for 64K at offset 0, then only half the payload.
  nbd::Request r{0, nbd::kCmdWrite, 60, 0, 65536};
  std::byte b[28];
  nbd::serialize_request(r, std::span<std::byte, 28>(b, 28));
  ASSERT_TRUE(send_all(fd, b, 28));
  auto half = pattern(32768, 9);
  ASSERT_TRUE(send_all(fd, half.data(), half.size()));
  ::close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // TearDown checks [0, 64K) is unchanged.
}

TEST_F(BadInput, DisconnectWithRequestsInFlightAndDisc) {
  int fd = conn();
  for (std::uint64_t i = 0; i < 16; ++i)
    ASSERT_TRUE(raw_request(fd, nbd::kCmdRead, 0, i * 4096, 4096, 70 + i));
  ::close(fd);
  fd = conn();
  ASSERT_TRUE(raw_request(fd, nbd::kCmdDisc, 0, 0, 0, 90));
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
}

// A client that never reads its replies: 64 x 1 MiB of reads, far more
// than the socket buffers hold.
int start_hog(const std::string& socket) {
  const int hog = raw_connect_go(socket);
  int buf = 4096;
  ::setsockopt(hog, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  for (std::uint64_t i = 0; i < 64; ++i)
    if (!raw_request(hog, nbd::kCmdRead, 0, i << 20, 1 << 20, 100 + i)) return -1;
  return hog;
}

// The hog is dropped after --reply-timeout (1 s here); generous deadlines
// for loaded cores.
TEST_F(BadInput, ClientThatNeverReadsRepliesIsDropped) {
  const int hog = start_hog(ex.socket);
  ASSERT_GE(hog, 0);
  // Wait for the hang-up without reading (reading would let the server
  // write on), then drain what was sent up to EOF.
  pollfd pfd{hog, POLLRDHUP, 0};
  EXPECT_EQ(::poll(&pfd, 1, 30000), 1) << "the hog was not dropped within 30 s";
  EXPECT_NE(pfd.revents & (POLLRDHUP | POLLHUP), 0);
  EXPECT_TRUE(closed_by_server(hog, 30000));
  ::close(hog);
}

// Nor does it hold up another connection. With a --reply-timeout of 120 s,
// a server blocked on the hog would answer the other client only after
// dropping it; 50 reads within 60 s show it was not waiting for that
// (no tight bound: the machine may be loaded).
TEST(ExporterProcess, ClientThatNeverReadsRepliesDoesNotBlockOthers) {
  Exporter ex;
  ASSERT_TRUE(ex.start({"--reply-timeout", "120000"})) << ex.log();
  const int hog = start_hog(ex.socket);
  ASSERT_GE(hog, 0);
  const int fd = raw_connect_go(ex.socket);
  ASSERT_GE(fd, 0);
  std::vector<std::byte> back(4096);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (std::uint64_t i = 0; i < 50; ++i) {
    ASSERT_TRUE(raw_request(fd, nbd::kCmdRead, 0, 0, 4096, 200 + i));
    const int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
            .count());
    ASSERT_EQ(raw_reply(fd, 200 + i, &back, std::max(left, 1)), 0) << "another client was held up by the hog";
  }
  ::close(fd);
  ::close(hog);
}

// ---- handshake -------------------------------------------------------------

TEST_F(BadInput, OptionFloodClosesTheConnection) {
  const int fd = unix_connect(ex.socket);
  ASSERT_TRUE(raw_greeting(fd));
  std::vector<std::byte> opts;
  for (int i = 0; i < 200; ++i) put_option(opts, 0x7777, {});
  send_all(fd, opts.data(), opts.size());
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
}

TEST_F(BadInput, HugeOptionLengthClosesTheConnection) {
  const int fd = unix_connect(ex.socket);
  ASSERT_TRUE(raw_greeting(fd));
  std::byte h[16];
  nbd::store_be64(h, nbd::kIHaveOpt);
  nbd::store_be32(h + 8, nbd::kOptGo);
  nbd::store_be32(h + 12, 0xFFFFFFF0U);
  ASSERT_TRUE(send_all(fd, h, sizeof h));
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
}

TEST_F(BadInput, HandshakeRejectsMissingFixedNewstyleAndBadOptionMagic) {
  int fd = unix_connect(ex.socket);
  ASSERT_TRUE(raw_greeting(fd, 0));
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
  fd = unix_connect(ex.socket);
  ASSERT_TRUE(raw_greeting(fd));
  std::byte junk[16] = {};
  ASSERT_TRUE(send_all(fd, junk, sizeof junk));
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
}

TEST_F(BadInput, UnsupportedAndMalformedOptionsGetErrorReplies) {
  const int fd = unix_connect(ex.socket);
  ASSERT_TRUE(raw_greeting(fd));
  std::vector<std::byte> o;
  put_option(o, nbd::kOptStructuredReply, {});
  put_option(o, nbd::kOptStartTls, {});
  put_option(o, nbd::kOptGo, std::vector<std::byte>(3));    // too short
  put_option(o, nbd::kOptList, std::vector<std::byte>(4));  // LIST takes no data
  ASSERT_TRUE(send_all(fd, o.data(), o.size()));
  OptReply r;
  ASSERT_TRUE(read_opt_reply(fd, r));
  EXPECT_EQ(r.type, nbd::kRepErrUnsup);
  ASSERT_TRUE(read_opt_reply(fd, r));
  EXPECT_EQ(r.type, nbd::kRepErrUnsup);
  ASSERT_TRUE(read_opt_reply(fd, r));
  EXPECT_EQ(r.type, nbd::kRepErrInvalid);
  ASSERT_TRUE(read_opt_reply(fd, r));
  EXPECT_EQ(r.type, nbd::kRepErrInvalid);
  ::close(fd);
}

TEST_F(BadInput, ExportNameOptionEntersTransmission) {
  const int fd = unix_connect(ex.socket);
  ASSERT_TRUE(raw_greeting(fd));
  std::vector<std::byte> o;
  put_option(o, nbd::kOptExportName, {});
  ASSERT_TRUE(send_all(fd, o.data(), o.size()));
  std::byte info[10];  // NO_ZEROES was negotiated: no 124 zero bytes
  ASSERT_TRUE(recv_all(fd, info, sizeof info));
  EXPECT_EQ(nbd::load_be64(info), kSize);
  EXPECT_EQ(nbd::load_be16(info + 8), nbd::kTransmissionFlags);
  std::vector<std::byte> back(65536);
  ASSERT_TRUE(raw_request(fd, nbd::kCmdRead, 0, 0, 65536, 5));
  ASSERT_EQ(raw_reply(fd, 5, &back), 0);
  EXPECT_TRUE(back == golden);
  ::close(fd);
}

TEST_F(BadInput, IdleHandshakeIsNotServedForeverButOthersAre) {
  const int idle = unix_connect(ex.socket);  // never sends its flags
  ASSERT_GE(idle, 0);
  const auto t0 = std::chrono::steady_clock::now();
  const int fd = conn();  // served meanwhile
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(closed_by_server(idle, 5 * kHandshakeMs)) << "the idle client kept its slot";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(kHandshakeMs / 2));
  EXPECT_NE(ex.log().find("handshake not finished"), std::string::npos) << ex.log();
  ::close(fd);
  ::close(idle);
}

// One deadline for the whole handshake, not one per receive: a client that
// trickles an option one byte every kHandshakeMs / 4 (each receive well
// within the deadline) is still dropped once the whole deadline has passed.
TEST_F(BadInput, TricklingHandshakeIsDroppedAtTheDeadline) {
  const int fd = unix_connect(ex.socket);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(raw_greeting(fd));
  std::vector<std::byte> opt;
  put_option(opt, nbd::kOptGo, std::vector<std::byte>(64));  // a 16-byte header, then 64 bytes
  const auto t0 = std::chrono::steady_clock::now();
  bool dropped = false;
  for (std::size_t i = 0; i < opt.size() && !dropped; ++i) {
    dropped = !send_all(fd, &opt[i], 1);
    pollfd pfd{fd, POLLIN, 0};
    if (!dropped && ::poll(&pfd, 1, kHandshakeMs / 4) > 0) {
      char c;
      dropped = ::recv(fd, &c, 1, MSG_PEEK) <= 0;
    }
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(dropped || closed_by_server(fd, 100))
      << "a trickling client kept its slot for " << opt.size() * kHandshakeMs / 4 << " ms";
  // Not a tight bound (loaded cores): well before the trickle's end
  // (80 bytes x kHandshakeMs / 4 = 20 s), which a per-receive deadline
  // would let it reach.
  EXPECT_LT(took, std::chrono::milliseconds(opt.size() * kHandshakeMs / 4 / 2));
  ::close(fd);
}

// ---- process -------------------------------------------------------------

TEST(ExporterProcess, SocketIs0600InsideA0700Directory) {
  Exporter ex;
  ASSERT_TRUE(ex.start()) << ex.log();
  struct stat st {};
  ASSERT_EQ(::stat(ex.socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  ASSERT_EQ(::stat(ex.dir.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  // No temporary directory left behind.
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(ex.dir.path))
    entries += e.path().filename().string()[0] == '.';
  EXPECT_EQ(entries, 0);
}

TEST(ExporterProcess, RefusesADirectoryOpenToOthers) {
  Exporter ex;
  const std::string open_dir = ex.dir.path + "/open";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0755), 0);
  ex.socket = open_dir + "/s";
  EXPECT_FALSE(ex.start());
  EXPECT_NE(ex.log().find("chmod 0700"), std::string::npos) << ex.log();
}

// A symbolic link where the socket directory goes is refused, not followed:
// even when it points at a directory that would pass every check.
TEST(ExporterProcess, RefusesASymlinkWhereTheSocketDirectoryGoes) {
  Exporter ex;
  const std::string real = ex.dir.path + "/real", link = ex.dir.path + "/link";
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  ex.socket = link + "/s";
  EXPECT_FALSE(ex.start());
  const int st = ex.wait_exit(3000);
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << ex.log();
  EXPECT_NE(ex.log().find("is a symbolic link"), std::string::npos) << ex.log();
  EXPECT_TRUE(std::filesystem::is_empty(real)) << "something was made through the link";
}

// A missing socket directory is made 0700 (and then used).
TEST(ExporterProcess, MakesAMissingSocketDirectory0700) {
  Exporter ex;
  const std::string sub = ex.dir.path + "/sub";
  ex.socket = sub + "/s";
  ASSERT_TRUE(ex.start()) << ex.log();
  struct stat st {};
  ASSERT_EQ(::lstat(sub.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  const int fd = raw_connect_go(ex.socket);
  EXPECT_GE(fd, 0);
  ::close(fd);
}

TEST(ExporterProcess, RefusesToStartTwiceOnOneSocket) {
  Exporter a;
  ASSERT_TRUE(a.start()) << a.log();
  Exporter b;
  b.socket = a.socket;
  b.start();  // a's socket answers, so wait for b's exit instead
  const int st = b.wait_exit(3000);
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1);
  EXPECT_NE(b.log().find("another server"), std::string::npos) << b.log();
  const int fd = raw_connect_go(a.socket);  // a still serves
  EXPECT_GE(fd, 0);
  ::close(fd);
}

// Whether this tierswap-nbd was built with CUDA, from its --version line.
bool built_with_cuda() {
  FILE* p = ::popen((exporter_binary() + " --version").c_str(), "r");
  char buf[256] = {};
  const bool got = p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr;
  if (p != nullptr) ::pclose(p);
  EXPECT_TRUE(got);
  return std::string(buf).find("cuda=yes") != std::string::npos;
}

// --store cuda where it cannot work exits 1 with a message that says why:
// without CUDA in the build, that; with it but no GPU here, the store's
// "no NVIDIA driver" / "no CUDA device" error.
TEST(ExporterProcess, CudaWithoutCudaSaysSo) {
  const bool cuda = built_with_cuda();
  if (cuda && ::access("/dev/nvidiactl", F_OK) == 0) GTEST_SKIP() << "this machine has a GPU";
  Exporter ex;
  EXPECT_FALSE(ex.start({}, "cuda"));
  const int st = ex.wait_exit(10000);
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << ex.log();
  const std::string log = ex.log();
  if (cuda) {
    EXPECT_TRUE(log.find("cuda store: no NVIDIA driver") != std::string::npos ||
                log.find("cuda store: no CUDA device") != std::string::npos)
        << log;
  } else {
    EXPECT_NE(log.find("built without CUDA support"), std::string::npos) << log;
  }
}

TEST(ExporterProcess, ConnectionLimitRefusesTheExtraClient) {
  Exporter ex;
  ASSERT_TRUE(ex.start({"--connections", "2"})) << ex.log();
  const int a = raw_connect_go(ex.socket), b = raw_connect_go(ex.socket);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  const int c = unix_connect(ex.socket);
  EXPECT_TRUE(closed_by_server(c));
  ::close(c);
  ::close(a);
  // The freed slot is taken again once the server has seen a go: retry
  // until a generous deadline instead of sleeping a fixed time.
  int d = -1;
  for (const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       (d = raw_connect_go(ex.socket)) < 0 && std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(d, 0);
  ::close(d);
  ::close(b);
}

TEST(ExporterProcess, SigtermAndSigintRefusedWhileAttachedUnlessForce) {
  Exporter ex;
  ASSERT_TRUE(ex.start()) << ex.log();
  const int fd = raw_connect_go(ex.socket);
  ASSERT_GE(fd, 0);
  ::kill(ex.pid, SIGTERM);
  ::kill(ex.pid, SIGINT);
  EXPECT_EQ(ex.wait_exit(600), -1) << "exited with a client attached";
  std::vector<std::byte> back(512);
  ASSERT_TRUE(raw_request(fd, nbd::kCmdRead, 0, 0, 512, 1));
  EXPECT_EQ(raw_reply(fd, 1, &back), 0);
  EXPECT_NE(ex.log().find("refusing"), std::string::npos) << ex.log();
  ::close(fd);
  // Once the server has seen the client go, SIGTERM ends it; until then it
  // is refused: repeat it until a generous deadline.
  int st = -1;
  for (const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       st == -1 && std::chrono::steady_clock::now() < end;) {
    ::kill(ex.pid, SIGTERM);
    st = ex.wait_exit(200);
  }
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_NE(::access(ex.socket.c_str(), F_OK), 0) << "socket left behind";

  Exporter forced;
  ASSERT_TRUE(forced.start({"--force"})) << forced.log();
  const int fd2 = raw_connect_go(forced.socket);
  ASSERT_GE(fd2, 0);
  ::kill(forced.pid, SIGTERM);
  const int st2 = forced.wait_exit(3000);
  ASSERT_NE(st2, -1);
  EXPECT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
  ::close(fd2);
}

TEST(ExporterProcess, BadCommandLinesExitWithUsageStatus) {
  for (std::vector<std::string> extra : {std::vector<std::string>{"--bogus"},
                                         {"--connections", "0"},
                                         {"--size", "12X"},
                                         {"--test-fail-offset", "1M"},
                                         {"--socket"}}) {
    Exporter ex;
    ex.start(extra);
    const int st = ex.wait_exit(3000);
    ASSERT_NE(st, -1);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << ex.log();
    EXPECT_NE(ex.log().find(extra[0]), std::string::npos)
        << "the error does not name " << extra[0] << ": " << ex.log();
  }
}

// --version says what this build has: cuda=yes exactly when the CUDA store
// was compiled in (the CMake option), and no test hooks in the installed binary.
TEST(ExporterProcess, VersionReportsTheFeaturesBuiltIn) {
  FILE* p = ::popen((exporter_binary() + " --version").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256] = {};
  ASSERT_NE(std::fgets(buf, sizeof buf, p), nullptr);
  EXPECT_EQ(WEXITSTATUS(::pclose(p)), 0);
  const std::string v = buf;
#ifdef TIERSWAP_HAVE_CUDA_STORE
  EXPECT_NE(v.find("cuda=yes"), std::string::npos) << v;
#else
  EXPECT_NE(v.find("cuda=no"), std::string::npos) << v;
#endif
  EXPECT_NE(v.find("test-hooks=no"), std::string::npos) << v;
}

// SO_PEERCRED: a peer that is neither root nor the exporter's user is
// refused. To get past the socket's 0600 mode the child keeps
// CAP_DAC_OVERRIDE while switching to uid 65534, so only the credential
// check stands in its way.
TEST(ExporterProcess, NonRootPeerIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch a child to another uid";
  Exporter ex;
  ASSERT_TRUE(ex.start()) << ex.log();
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    char verdict = 'x';
    ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
    if (::setresgid(65534, 65534, 65534) == 0 && ::setresuid(65534, 65534, 65534) == 0) {
      __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct data[2]{};
      ::syscall(SYS_capget, &hdr, data);
      data[0].effective |= 1U << CAP_DAC_OVERRIDE;
      ::syscall(SYS_capset, &hdr, data);
      const int fd = unix_connect(ex.socket);
      if (fd < 0) {
        verdict = 'c';  // could not even connect
      } else {
        std::byte g[18];
        verdict = recv_all(fd, g, sizeof g, 2000) ? 'g' : 'r';  // greeted / refused
      }
    }
    (void)!::write(pipefd[1], &verdict, 1);
    ::_exit(0);
  }
  char verdict = '?';
  ::close(pipefd[1]);
  ASSERT_EQ(::read(pipefd[0], &verdict, 1), 1);
  ::waitpid(child, nullptr, 0);
  ::close(pipefd[0]);
  if (verdict == 'c' || verdict == 'x')
    GTEST_SKIP() << "could not connect as uid 65534 (no CAP_DAC_OVERRIDE here)";
  EXPECT_EQ(verdict, 'r') << "a non-root peer got the NBD greeting";
  EXPECT_NE(ex.log().find("uid 65534"), std::string::npos) << ex.log();
  // And root still gets in.
  const int fd = raw_connect_go(ex.socket);
  EXPECT_GE(fd, 0);
  ::close(fd);
}

}  // namespace
