// The VRAM tier's errors a person can act on (label unit), on fake roots:
// the attach client's "this kernel has no nbd driver (CONFIG_BLK_DEV_NBD)"
// and "no free nbd device" through the ioctl interface (which reads
// /sys/block to pick a device; no ioctl is made when none is free), and an
// exporter that died while the daemon runs (status: "gone"). The planner's
// "no nbd driver" and "no NVIDIA GPU" are in vram_kind_test.cpp, a dead
// exporter found at a restart in vram_readopt_test.cpp.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "backends/vram/nbd_attach.hpp"
#include "backends/vram/vram_kind.hpp"
#include "fake_root.hpp"

using namespace tierswap;
namespace fsys = std::filesystem;

namespace {

class AttachErrors : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv_), 0); }
  void TearDown() override {
    ::close(sv_[0]);
    ::close(sv_[1]);
  }
  Result<vram::attach::Attachment> connect(const test::TempRoot& root) {
    vram::attach::ConnectOptions o;
    o.size = 1 << 20;
    o.force_ioctl = true;
    const int fds[] = {sv_[0]};
    return vram::attach::connect(HostFs(root.str()), fds, o);
  }
  int sv_[2] = {-1, -1};
};

}  // namespace

TEST_F(AttachErrors, NoNbdDriverNamesTheKernelOption) {
  test::TempRoot root;
  fsys::create_directories(root.path() / "sys/block/sda");
  auto a = connect(root);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, ENODEV);
  EXPECT_NE(a.error().message.find("this kernel has no nbd driver (CONFIG_BLK_DEV_NBD)"), std::string::npos)
      << a.error().message;
  EXPECT_NE(a.error().message.find("modprobe nbd"), std::string::npos) << a.error().message;
}

TEST_F(AttachErrors, EveryDeviceConnectedIsNoFreeNbdDevice) {
  test::TempRoot root;
  for (const char* d : {"nbd0", "nbd1", "nbd2"}) test::spit(root.path() / "sys/block" / d / "pid", "1234\n");
  auto a = connect(root);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, EBUSY);
  EXPECT_NE(a.error().message.find("no free nbd device"), std::string::npos) << a.error().message;
  EXPECT_NE(a.error().message.find("nbds_max"), std::string::npos) << a.error().message;
}

TEST(ExporterState, AnExporterThatDiedShowsAsGone) {
  test::TempRoot root;
  const auto stat = root.path() / "proc/4242/stat";
  test::spit(stat,
             "4242 (tierswap-nbd) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 3 0 777 1000 200\n");
  const HostFs fs(root.str());
  EXPECT_EQ(vram::exporter_state(fs, 4242, 777), "running");
  // The pid was reused by another program started later.
  test::spit(stat, "4242 (bash) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 3 0 9999 1000 200\n");
  EXPECT_EQ(vram::exporter_state(fs, 4242, 777), "gone");
  // A zombie.
  test::spit(stat,
             "4242 (tierswap-nbd) Z 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 3 0 777 1000 200\n");
  EXPECT_EQ(vram::exporter_state(fs, 4242, 777), "gone");
  fsys::remove_all(root.path() / "proc/4242");
  EXPECT_EQ(vram::exporter_state(fs, 4242, 777), "gone");
  EXPECT_EQ(vram::exporter_state(fs, 0, 0), "");
}
