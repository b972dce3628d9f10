// Swap files and partitions that someone else could read or redirect: the
// planner and the disk backend refuse them, name what is wrong, and compare
// paths the way /proc/swaps prints them (symlinks resolved).
//
// The tests run as root, so what they create is root-owned; ownership by
// another user is made with lchown.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "backends/disk/disk.hpp"
#include "config/loader.hpp"
#include "daemon/apply.hpp"
#include "daemon/observe.hpp"
#include "daemon/plan_file.hpp"
#include "daemon/plan_ops.hpp"
#include "daemon/planner.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"

using namespace tierswap;
namespace fs = std::filesystem;

namespace {

constexpr uid_t kNobody = 65534;
constexpr std::uint64_t kSize = 1 << 20;

struct Planned {
  bool ok = false;
  std::vector<std::string> errors;  // formatted
  Plan plan;
};

config::Spec load(const std::string& yaml, std::uint64_t ram) {
  auto lr = config::load_string(yaml, "/etc/tierswap.yaml", config::HostFacts{.ram_bytes = ram});
  EXPECT_TRUE(lr.ok());
  return *lr.spec;
}

Planned plan(const HostFs& hfs, const std::string& yaml, const Journal& journal = {}) {
  auto obs = observe(hfs);
  EXPECT_TRUE(obs);
  auto pr = make_plan(load(yaml, obs->ram_bytes), *obs, journal, hfs);
  Planned p;
  p.ok = pr.ok();
  p.plan = pr.plan;
  for (const auto& d : pr.diagnostics)
    if (d.severity == config::Severity::error) p.errors.push_back(config::format_diagnostic(d));
  return p;
}

std::string file_tier(const std::string& path, const std::string& size = "1M") {
  return "tiers:\n  - name: f\n    kind: file\n    path: " + path + "\n    size: " + size +
         "\n    priority: 5\n";
}

// A swap area of kSize bytes (the header of `label`: "" foreign, else ours)
// with every block allocated.
void swap_file(const fs::path& p, mode_t mode = 0600, const std::string& label = "") {
  auto h = *swap::make_swap_header(kSize, swap::system_page_size(), {}, label);
  std::string bytes(h.begin(), h.end());
  bytes.resize(kSize, '\0');
  test::spit(p, bytes);
  ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

std::string only_error(const Planned& p) {
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.errors.size(), 1u);
  return p.errors.empty() ? "" : p.errors.front();
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class DiskSecurity : public ::testing::Test {
 protected:
  test::TempRoot root_{"02-zram-file-zswap"};
  HostFs hfs_{root_.str()};
  fs::path at(const std::string& rel) const { return root_.path() / rel; }
};

}  // namespace

// --- Finding 1: an existing swap file must be root's alone -----------------

TEST_F(DiskSecurity, SafeExistingSwapFileIsUsed) {
  swap_file(at("var/swap/t.swap"));
  const auto p = plan(hfs_, file_tier("/var/swap/t.swap"));
  ASSERT_TRUE(p.ok) << (p.errors.empty() ? "" : p.errors.front());
  ASSERT_EQ(p.plan.steps.size(), 1u);
  EXPECT_EQ(p.plan.steps[0].op, "swapon");
  EXPECT_EQ(p.plan.steps[0].path, "/var/swap/t.swap");
}

TEST_F(DiskSecurity, WorldReadableSwapFileIsRefused) {
  swap_file(at("var/swap/t.swap"), 0644);
  const auto e = only_error(plan(hfs_, file_tier("/var/swap/t.swap")));
  EXPECT_TRUE(has(e, "tiers[0].path: /var/swap/t.swap")) << e;
  EXPECT_TRUE(has(e, "mode 0644")) << e;
}

TEST_F(DiskSecurity, SwapFileOwnedByAnotherUserIsRefused) {
  swap_file(at("var/swap/t.swap"));
  ASSERT_EQ(::lchown(at("var/swap/t.swap").c_str(), kNobody, kNobody), 0);
  const auto e = only_error(plan(hfs_, file_tier("/var/swap/t.swap")));
  EXPECT_TRUE(has(e, "/var/swap/t.swap is owned by uid 65534")) << e;
}

TEST_F(DiskSecurity, SymlinkAtThePathIsRefused) {
  swap_file(at("var/swap/real.swap"));
  fs::create_symlink("real.swap", at("var/swap/t.swap"));
  const auto e = only_error(plan(hfs_, file_tier("/var/swap/t.swap")));
  EXPECT_TRUE(has(e, "/var/swap/t.swap is a symlink")) << e;
}

TEST_F(DiskSecurity, GroupWritableDirectoryIsRefused) {
  swap_file(at("var/swap/t.swap"));
  ASSERT_EQ(::chmod(at("var/swap").c_str(), 0775), 0);
  const auto e = only_error(plan(hfs_, file_tier("/var/swap/t.swap")));
  EXPECT_TRUE(has(e, "directory /var/swap is writable by group or others (mode 0775)")) << e;
}

TEST_F(DiskSecurity, GroupWritableDirectoryIsRefusedForANewFileToo) {
  ASSERT_EQ(::chmod(at("var/swap").c_str(), 0770), 0);
  const auto e = only_error(plan(hfs_, file_tier("/var/swap/new.swap")));
  EXPECT_TRUE(has(e, "directory /var/swap is writable by group or others (mode 0770)")) << e;
}

TEST_F(DiskSecurity, DirectoryOwnedByAnotherUserIsRefused) {
  swap_file(at("var/swap/t.swap"));
  ASSERT_EQ(::lchown(at("var/swap").c_str(), kNobody, kNobody), 0);
  const auto e = only_error(plan(hfs_, file_tier("/var/swap/t.swap")));
  EXPECT_TRUE(has(e, "directory /var/swap is owned by uid 65534")) << e;
}

TEST_F(DiskSecurity, SymlinkedDirectoryOwnedByAnotherUserIsRefused) {
  fs::create_directories(at("data/swap"));
  swap_file(at("data/swap/t.swap"));
  fs::remove_all(at("var/swap"));
  fs::create_symlink("../data/swap", at("var/swap"));
  ASSERT_EQ(::lchown(at("var/swap").c_str(), kNobody, kNobody), 0);
  const auto e = only_error(plan(hfs_, file_tier("/var/swap/t.swap")));
  EXPECT_TRUE(has(e, "/var/swap is a symlink owned by uid 65534")) << e;
}

TEST_F(DiskSecurity, SymlinkedDirectoryIntoAnUnsafeDirectoryIsRefused) {
  fs::create_directories(at("data/swap"));
  swap_file(at("data/swap/t.swap"));
  ASSERT_EQ(::chmod(at("data").c_str(), 0777), 0);
  fs::remove_all(at("var/swap"));
  fs::create_symlink("/data/swap", at("var/swap"));  // absolute: under the root
  const auto e = only_error(plan(hfs_, file_tier("/var/swap/t.swap")));
  EXPECT_TRUE(has(e, "directory /data is writable by group or others (mode 0777)")) << e;
}

// --- Finding 2: create, resize and remove never follow a link ---------------

TEST_F(DiskSecurity, CreateMakesARootOwned0600FileWithOurHeader) {
  ASSERT_TRUE(disk::create_swap_file(hfs_, "/var/swap/t.swap", kSize));
  struct stat st {};
  ASSERT_EQ(::lstat(at("var/swap/t.swap").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(*swap::probe_first_page(at("var/swap/t.swap"), swap::system_page_size()), swap::FirstPage::ours);
}

TEST_F(DiskSecurity, CreateRefusesADirectoryReachedThroughSomeoneElsesLink) {
  fs::create_directories(at("data"));
  fs::remove_all(at("var/swap"));
  fs::create_symlink("../data", at("var/swap"));
  ASSERT_EQ(::lchown(at("var/swap").c_str(), kNobody, kNobody), 0);
  auto r = disk::create_swap_file(hfs_, "/var/swap/t.swap", kSize);
  ASSERT_FALSE(r);
  EXPECT_TRUE(has(r.error().message, "/var/swap is a symlink owned by uid 65534")) << r.error().message;
  EXPECT_FALSE(fs::exists(at("data/t.swap")));
}

TEST_F(DiskSecurity, ResizeRefusesASymlinkAndLeavesItsTargetAlone) {
  fs::create_directories(at("data"));
  swap_file(at("data/ours.swap"), 0600, "tierswap");
  fs::create_symlink("../../data/ours.swap", at("var/swap/t.swap"));
  auto r = disk::resize_swap_file(hfs_, "/var/swap/t.swap", 2 * kSize);
  ASSERT_FALSE(r);
  EXPECT_TRUE(has(r.error().message, "/var/swap/t.swap is a symlink")) << r.error().message;
  EXPECT_EQ(fs::file_size(at("data/ours.swap")), kSize);
}

TEST_F(DiskSecurity, ResizeRefusesAWorldReadableFile) {
  swap_file(at("var/swap/t.swap"), 0644, "tierswap");
  auto r = disk::resize_swap_file(hfs_, "/var/swap/t.swap", 2 * kSize);
  ASSERT_FALSE(r);
  EXPECT_TRUE(has(r.error().message, "mode 0644")) << r.error().message;
  EXPECT_EQ(fs::file_size(at("var/swap/t.swap")), kSize);
}

TEST_F(DiskSecurity, ResizeOfOurFileWorks) {
  swap_file(at("var/swap/t.swap"), 0600, "tierswap");
  ASSERT_TRUE(disk::resize_swap_file(hfs_, "/var/swap/t.swap", 2 * kSize));
  EXPECT_EQ(fs::file_size(at("var/swap/t.swap")), 2 * kSize);
  EXPECT_EQ(*swap::probe_first_page(at("var/swap/t.swap"), swap::system_page_size()), swap::FirstPage::ours);
}

TEST_F(DiskSecurity, RemoveRefusesASymlink) {
  fs::create_directories(at("data"));
  swap_file(at("data/ours.swap"), 0600, "tierswap");
  fs::create_symlink("../../data/ours.swap", at("var/swap/t.swap"));
  auto r = disk::remove_swap_file(hfs_, "/var/swap/t.swap");
  ASSERT_FALSE(r);
  EXPECT_TRUE(has(r.error().message, "/var/swap/t.swap is a symlink")) << r.error().message;
  EXPECT_TRUE(fs::exists(at("data/ours.swap")));
}

// --- Finding 3: paths compared as /proc/swaps prints them -------------------

namespace {
// What the kernel does: /proc/swaps names the area by its resolved path.
void kernel_prints_resolved(const fs::path& swaps, const std::string& written, const std::string& resolved) {
  std::string text = test::slurp(swaps);
  for (auto p = text.find(written); p != std::string::npos; p = text.find(written, p + resolved.size()))
    text.replace(p, written.size(), resolved);
  test::spit(swaps, text);
}
}  // namespace

TEST_F(DiskSecurity, PartitionThroughADeviceMapperLinkIsRecognisedWhenActive) {
  swap_file(at("dev/dm-1"));
  fs::create_directories(at("dev/mapper"));
  fs::create_symlink("../dm-1", at("dev/mapper/vg-swap"));
  const std::string yaml =
      "tiers:\n  - name: p\n    kind: partition\n    device: /dev/mapper/vg-swap\n"
      "    priority: 5\n";
  auto first = plan(hfs_, yaml);
  ASSERT_TRUE(first.ok) << (first.errors.empty() ? "" : first.errors.front());
  swap::RecordingKernel k(&hfs_);
  Journal j;
  Executor ex(hfs_, k, j);
  ASSERT_TRUE(ex.apply(first.plan, ApplyOptions{.persist = false}));
  kernel_prints_resolved(at("proc/swaps"), "/dev/mapper/vg-swap", "/dev/dm-1");

  auto again = plan(hfs_, yaml, j);
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(again.plan.empty()) << plan_to_text(again.plan);
  const auto down = make_teardown(j, *observe(hfs_));
  ASSERT_EQ(down.steps.size(), 1u) << plan_to_text(down);
  EXPECT_EQ(down.steps[0].op, "swapoff");
  EXPECT_EQ(down.steps[0].path, "/dev/dm-1");
}

TEST_F(DiskSecurity, FileUnderASymlinkedDirectoryIsRecognisedWhenActive) {
  fs::create_directories(at("data/swap"));
  fs::remove_all(at("var/swap"));
  fs::create_symlink("../data/swap", at("var/swap"));
  const std::string yaml = file_tier("/var/swap/t.swap");
  auto first = plan(hfs_, yaml);
  ASSERT_TRUE(first.ok) << (first.errors.empty() ? "" : first.errors.front());
  swap::RecordingKernel k(&hfs_);
  Journal j;
  Executor ex(hfs_, k, j);
  ASSERT_TRUE(ex.apply(first.plan, ApplyOptions{.persist = false}));
  kernel_prints_resolved(at("proc/swaps"), "/var/swap/t.swap", "/data/swap/t.swap");

  auto again = plan(hfs_, yaml, j);
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(again.plan.empty()) << plan_to_text(again.plan);
  const auto down = make_teardown(j, *observe(hfs_));
  ASSERT_EQ(down.steps.size(), 2u) << plan_to_text(down);
  EXPECT_EQ(down.steps[0].op, "swapoff");
  EXPECT_EQ(down.steps[0].path, "/data/swap/t.swap");
  EXPECT_EQ(down.steps[1].op, "remove_file");
}

// --- A missing directory is created (root, 0700) and removed again ----------

TEST(MissingDirectory, IsPlannedNotAnError) {
  test::TempRoot root("02-zram-file-zswap");
  fs::remove_all(root.path() / "var/swap");
  const HostFs hfs(root.str());
  const auto p = plan(hfs, file_tier("/var/swap/t.swap"));
  ASSERT_TRUE(p.ok) << (p.errors.empty() ? "" : p.errors.front());
  ASSERT_EQ(p.plan.steps.size(), 2u) << plan_to_text(p.plan);
  EXPECT_EQ(p.plan.steps[0].op, "make_file");
  EXPECT_TRUE(has(plan_to_text(p.plan), "directory /var/swap will be created (owner root, mode 0700)"))
      << plan_to_text(p.plan);
  EXPECT_FALSE(fs::exists(root.path() / "var/swap"));  // planning changes nothing
}

TEST(MissingDirectory, IsCreated0700AndRemovedByTeardown) {
  test::TempRoot top;  // a unique directory under /tmp, on the real root
  const auto file = (top.path() / "missing/deeper/swapfile").string();
  const HostFs hfs("/");
  const auto p = plan(hfs, file_tier(file));
  ASSERT_TRUE(p.ok) << (p.errors.empty() ? "" : p.errors.front());
  swap::RecordingKernel k;  // records swapon, touches nothing
  Journal j;
  Executor ex(hfs, k, j);
  ASSERT_TRUE(ex.apply(p.plan, ApplyOptions{.persist = false}));
  for (const auto* d : {"missing", "missing/deeper"}) {
    struct stat st {};
    ASSERT_EQ(::lstat((top.path() / d).c_str(), &st), 0) << d;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << d;
    EXPECT_EQ(st.st_uid, 0u) << d;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << d;
  }
  ASSERT_TRUE(fs::exists(file));

  const auto down = make_teardown(j, *observe(hfs));
  ASSERT_TRUE(ex.apply(down, ApplyOptions{.persist = false}));
  EXPECT_FALSE(fs::exists(top.path() / "missing"));
  EXPECT_TRUE(fs::exists(top.path()));
}

TEST(MissingDirectory, ADirectoryTierswapDidNotCreateStays) {
  test::TempRoot top;
  fs::create_directory(top.path() / "mine");
  const auto file = (top.path() / "mine/swapfile").string();
  const HostFs hfs("/");
  ASSERT_TRUE(disk::create_swap_file(hfs, file, kSize));
  ASSERT_TRUE(disk::remove_swap_file(hfs, file));
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(fs::exists(top.path() / "mine"));
}

TEST(MissingDirectory, ANonEmptyCreatedDirectoryStays) {
  test::TempRoot top;
  const auto file = (top.path() / "made/swapfile").string();
  const HostFs hfs("/");
  ASSERT_TRUE(disk::create_swap_file(hfs, file, kSize));
  test::spit(top.path() / "made/other", "x");
  ASSERT_TRUE(disk::remove_swap_file(hfs, file));
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(fs::exists(top.path() / "made/other"));
}

TEST(MissingDirectory, APathThroughARegularFileIsAnError) {
  test::TempRoot root("01-desktop-default");
  const HostFs hfs(root.str());
  const auto e = only_error(plan(hfs, file_tier("/etc/tierswap.yaml/t.swap")));
  EXPECT_TRUE(has(e, "tiers[0].path: /etc/tierswap.yaml is not a directory")) << e;
}

// The shipped examples that put a swap file in /var/swap plan on a machine
// that has no /var/swap yet (full-reference.yaml may fail for other reasons
// here, never for its path).
TEST(MissingDirectory, ShippedExamplesPlanWithoutVarSwap) {
  test::TempRoot root("02-zram-file-zswap");
  fs::remove_all(root.path() / "var");
  const auto examples = test::fixtures_dir() / "../../packaging/examples";
  for (const auto* name : {"server.yaml", "db.yaml", "full-reference.yaml"}) {
    SCOPED_TRACE(name);
    char* text = nullptr;
    size_t len = 0;
    std::FILE* diag = ::open_memstream(&text, &len);
    const auto p = plan_file((examples / name).string(), root.str(), diag);
    std::fclose(diag);
    const std::string out(text, len);
    std::free(text);
    if (std::string(name) != "full-reference.yaml") EXPECT_TRUE(p.ok) << out;
    EXPECT_FALSE(has(out, ".path:")) << out;
    EXPECT_TRUE(has(plan_to_text(p.plan), "/var/swap will be created") || !p.ok) << plan_to_text(p.plan);
  }
}
