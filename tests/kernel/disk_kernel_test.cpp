// Real kernel: swap files reached through links and checked before swapon.
//   - a tier under a symlinked directory is recognised as active on the next
//     plan (the kernel prints the resolved path in /proc/swaps) and swapped
//     off at teardown;
//   - RealKernel refuses a swap file that others can read, and swaps on a
//     checked one through its descriptor, which /proc/swaps shows by path;
//   - a missing directory is made for the file and removed at teardown.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <unistd.h>

#include "backends/swap/kernel.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "backends/swap/swap_header.hpp"
#include "daemon/engine.hpp"
#include "daemon/plan_ops.hpp"
#include "machine_state.hpp"

using namespace tierswap;
using namespace tierswap::ktest;

namespace {

bool active(const std::string& path) {
  const HostFs hfs("/");
  auto a = swap::parse_proc_swaps(*hfs.read(paths::proc_swaps));
  return a && swap::find_area(*a, path).has_value();
}

// Swaps off `path` if a test left it active, even after it was unlinked
// (through a descriptor opened while it still had its name).
class AreaGuard {
 public:
  void hold(const std::string& path) { fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }
  ~AreaGuard() {
    if (fd_ < 0) return;
    const std::string self = "/proc/self/fd/" + std::to_string(fd_);
    ::swapoff(self.c_str());
    ::close(fd_);
  }

 private:
  int fd_ = -1;
};

// A foreign swap area of `size` bytes, every block written.
void swap_file(const std::string& path, std::uint64_t size, mode_t mode) {
  auto h = *swap::make_swap_header(size, swap::system_page_size(), {}, "");
  std::string bytes(h.begin(), h.end());
  bytes.resize(size, '\0');
  spit(path, bytes);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

std::string file_tier(const std::string& path) {
  return "tiers:\n  - name: kt-file\n    kind: file\n    path: " + path +
         "\n    size: 32M\n    priority: 10\n";
}

}  // namespace

class DiskKernel : public KernelTest {};

TEST_F(DiskKernel, TierUnderASymlinkedDirectoryIsRecognisedAndSwappedOff) {
  fs::create_directory(dir_ + "/real");
  fs::create_directory_symlink("real", dir_ + "/link");
  const std::string resolved = dir_ + "/real/kt.swap";
  Engine engine(EngineOptions{.config = write_config(file_tier(dir_ + "/link/kt.swap"))});
  AreaGuard guard;
  auto r = engine.start();
  ASSERT_TRUE(r) << r.error().message;
  guard.hold(resolved);
  EXPECT_TRUE(active(resolved));
  const auto j = engine.journal();
  ASSERT_EQ(j.tiers.size(), 1u);
  EXPECT_EQ(j.tiers[0].swap_path, resolved);

  auto again = engine.plan();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->empty()) << plan_to_text(*again);

  ASSERT_TRUE(engine.stop());
  EXPECT_FALSE(active(resolved));
  EXPECT_FALSE(fs::exists(resolved));
  EXPECT_FALSE(fs::exists(paths::run_state_file));
}

TEST_F(DiskKernel, RealKernelRefusesASwapFileOthersCanRead) {
  const std::string path = dir_ + "/open.swap";
  swap_file(path, 16 << 20, 0644);
  AreaGuard guard;
  guard.hold(path);
  const HostFs hfs("/");
  swap::RealKernel k(hfs);
  auto r = k.swapon(path, -1, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EPERM);
  EXPECT_NE(r.error().message.find(path + " has mode 0644"), std::string::npos) << r.error().message;
  EXPECT_FALSE(active(path));
}

TEST_F(DiskKernel, RealKernelRefusesASymlinkToASwapFile) {
  const std::string path = dir_ + "/ok.swap";
  swap_file(path, 16 << 20, 0600);
  fs::create_symlink("ok.swap", dir_ + "/link.swap");
  AreaGuard guard;
  guard.hold(path);
  const HostFs hfs("/");
  swap::RealKernel k(hfs);
  auto r = k.swapon(dir_ + "/link.swap", -1, false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(dir_ + "/link.swap is a symlink"), std::string::npos) << r.error().message;
  EXPECT_FALSE(active(path));
}

TEST_F(DiskKernel, RealKernelSwapsOnACheckedFileByItsDescriptor) {
  const std::string path = dir_ + "/ok.swap";
  swap_file(path, 16 << 20, 0600);
  AreaGuard guard;
  guard.hold(path);
  const HostFs hfs("/");
  swap::RealKernel k(hfs);
  auto r = k.swapon(path, -1, false);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(active(path));  // by its own path, not /proc/self/fd/N
  ASSERT_TRUE(k.swapoff(path));
  EXPECT_FALSE(active(path));
}

TEST_F(DiskKernel, MissingDirectoryIsMadeAndRemovedAgain) {
  const std::string path = dir_ + "/made/kt.swap";
  Engine engine(EngineOptions{.config = write_config(file_tier(path))});
  AreaGuard guard;
  auto r = engine.start();
  ASSERT_TRUE(r) << r.error().message;
  guard.hold(path);
  EXPECT_TRUE(active(path));
  struct stat st {};
  ASSERT_EQ(::lstat((dir_ + "/made").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_TRUE(engine.stop());
  EXPECT_FALSE(active(path));
  EXPECT_FALSE(fs::exists(dir_ + "/made"));
}
