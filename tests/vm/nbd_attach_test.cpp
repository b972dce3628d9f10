// The attach client's host-side half (label nbd): the client handshake
// against tierswap-nbd over a socketpair, and connect()'s refusals, which
// need no nbd driver. The kernel half runs in the VM (run_vm.sh).
#include "backends/vram/nbd_attach.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "backends/vram/nbd_protocol.hpp"

namespace {

using namespace tierswap;
namespace attach = tierswap::vram::attach;

// Starts tierswap-nbd on one end of a socketpair; returns the other end.
struct Exporter {
  pid_t pid = -1;
  int fd = -1;
  explicit Exporter(const std::string& size) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    pid = ::fork();
    if (pid == 0) {
      ::dup2(sv[1], 3);
      ::execl(TIERSWAP_NBD_BIN, TIERSWAP_NBD_BIN, "--fd", "3", "--size", size.c_str(), "--store", "host",
              "--no-mlock", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(sv[1]);
    fd = sv[0];
  }
  ~Exporter() {
    if (fd >= 0) ::close(fd);  // the exporter stops when its only --fd ends
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
};

TEST(NbdAttach, HandshakeReadsSizeAndFlags) {
  Exporter e("16M");
  ASSERT_GE(e.fd, 0);
  auto info = attach::client_handshake(e.fd);
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_EQ(info->size, 16U << 20);
  EXPECT_TRUE(info->transmission_flags & vram::nbd::kTxHasFlags);
  EXPECT_TRUE(info->transmission_flags & vram::nbd::kTxCanMultiConn);
  EXPECT_EQ(info->preferred_block, vram::nbd::kPreferredBlock);
}

TEST(NbdAttach, HandshakeRefusesAPeerThatIsNotNbd) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const char junk[18] = "HTTP/1.1 200 OK\r\n";
  ASSERT_EQ(::write(sv[1], junk, sizeof junk), static_cast<ssize_t>(sizeof junk));
  auto info = attach::client_handshake(sv[0], {}, std::chrono::milliseconds(500));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, EPROTO);
  EXPECT_NE(info.error().message.find("not an NBD server"), std::string::npos) << info.error().message;
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(NbdAttach, HandshakeTimesOutOnASilentPeer) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto info = attach::client_handshake(sv[0], {}, std::chrono::milliseconds(100));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, ETIMEDOUT);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(NbdAttach, ConnectRefusesSeveralSocketsWithoutMultiConn) {
  const HostFs fs("/");
  const int socks[2] = {-1, -1};
  attach::ConnectOptions o;
  o.size = 1U << 20;
  o.transmission_flags = vram::nbd::kTxHasFlags;
  auto a = attach::connect(fs, socks, o);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, EINVAL);
  EXPECT_NE(a.error().message.find("CAN_MULTI_CONN"), std::string::npos) << a.error().message;
}

TEST(NbdAttach, ConnectRefusesASizeOffTheBlockSize) {
  const HostFs fs("/");
  const int socks[1] = {-1};
  attach::ConnectOptions o;
  o.size = 4096 + 512;
  auto a = attach::connect(fs, socks, o);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, EINVAL);
}

// Derived from the machine: only where the kernel has no nbd driver at all.
TEST(NbdAttach, NoDriverIsNamed) {
  const HostFs fs("/");
  if (attach::have_netlink_family() || std::filesystem::exists("/dev/nbd0") ||
      std::filesystem::exists("/sys/block/nbd0"))
    GTEST_SKIP() << "this kernel has an nbd driver; the VM test covers it";
  Exporter e("1M");
  auto info = attach::client_handshake(e.fd);
  ASSERT_TRUE(info) << info.error().describe();
  attach::ConnectOptions o;
  o.size = info->size;
  o.transmission_flags = info->transmission_flags;
  const int socks[1] = {e.fd};
  auto a = attach::connect(fs, socks, o);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, ENODEV);
  EXPECT_NE(a.error().message.find("CONFIG_BLK_DEV_NBD"), std::string::npos) << a.error().message;
}

}  // namespace
