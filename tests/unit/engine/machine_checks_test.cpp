// Bad inputs that only the machine can reveal: each gives one clear error at
// the config's line and column, and an apply of it never starts.
#include <gtest/gtest.h>

#include "backends/swap/swap_header.hpp"
#include "config/loader.hpp"
#include "daemon/planner.hpp"
#include "fake_root.hpp"

using namespace tierswap;

namespace {

struct Checked {
  std::vector<std::string> errors;  // formatted
  bool ok = false;
  Plan plan;
};

Checked check(const test::TempRoot& root, const std::string& yaml) {
  const HostFs hfs(root.str());
  auto obs = observe(hfs);
  EXPECT_TRUE(obs);
  auto lr = config::load_string(yaml, "/etc/tierswap.yaml", config::HostFacts{.ram_bytes = obs->ram_bytes});
  Checked c;
  for (const auto& d : lr.diagnostics)
    if (d.severity == config::Severity::error) c.errors.push_back(config::format_diagnostic(d));
  EXPECT_TRUE(lr.ok()) << (c.errors.empty() ? "" : c.errors.front());
  if (!lr.ok()) return c;
  auto pr = make_plan(*lr.spec, *obs, Journal{}, hfs);
  for (const auto& d : pr.diagnostics)
    if (d.severity == config::Severity::error) c.errors.push_back(config::format_diagnostic(d));
  c.ok = pr.ok();
  c.plan = pr.plan;
  return c;
}

std::string only_error(const Checked& c) {
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.errors.size(), 1u);
  return c.errors.empty() ? "" : c.errors.front();
}

}  // namespace

TEST(MachineChecks, AlgorithmTheKernelLacks) {
  test::TempRoot root("01-desktop-default");
  const auto e =
      only_error(check(root, "tiers:\n  - name: z\n    kind: zram\n    size: 1G\n    algorithm: zstd\n"));
  EXPECT_EQ(e,
            "/etc/tierswap.yaml:5:16: tiers[0].algorithm: \"zstd\" is not offered by this kernel"
            " (this kernel offers: lzo-rle lzo lz4)")
      << e;
}

TEST(MachineChecks, PreferenceListNoneOffered) {
  test::TempRoot root("01-desktop-default");
  const auto e = only_error(
      check(root, "tiers:\n  - name: z\n    kind: zram\n    size: 1G\n    algorithm: [zstd, 842]\n"));
  EXPECT_NE(e.find("tiers[0].algorithm: none of zstd, 842 is offered by this kernel (this kernel offers: "
                   "lzo-rle lzo lz4)"),
            std::string::npos)
      << e;
}

TEST(MachineChecks, RecompressWithoutRecompAlgorithm) {
  test::TempRoot root("01-desktop-default");
  const auto e = only_error(check(root,
                                  "tiers:\n  - name: z\n    kind: zram\n    size: 1G\n"
                                  "    recompress:\n      algorithm: lz4\n"));
  EXPECT_NE(e.find("/etc/tierswap.yaml:6:7: tiers[0].recompress: recompression needs "
                   "/sys/block/zram0/recomp_algorithm, which this kernel does not have"),
            std::string::npos)
      << e;
}

// A missing directory is created with the file (disk_security_test.cpp); a
// path through something that is not a directory is an error.
TEST(MachineChecks, FileUnderARegularFile) {
  test::TempRoot root("01-desktop-default");
  const auto e = only_error(check(
      root, "tiers:\n  - name: f\n    kind: file\n    path: /etc/tierswap.yaml/t.swap\n    size: 64M\n"));
  EXPECT_NE(e.find(":4:11: tiers[0].path: /etc/tierswap.yaml is not a directory"), std::string::npos) << e;
}

TEST(MachineChecks, FileLargerThanFreeSpace) {
  test::TempRoot root("02-zram-file-zswap");
  const auto e = only_error(
      check(root, "tiers:\n  - name: f\n    kind: file\n    path: /var/swap/t.swap\n    size: 1000000G\n"));
  EXPECT_NE(e.find(":5:11: tiers[0].size: 1073741824000000 bytes do not fit in the free space of /var/swap"),
            std::string::npos)
      << e;
}

TEST(MachineChecks, ExistingNonSwapFileIsNeverOverwritten) {
  test::TempRoot root("02-zram-file-zswap");
  test::spit(root.path() / "var/swap/t.swap", "precious data\n");
  const auto e = only_error(
      check(root, "tiers:\n  - name: f\n    kind: file\n    path: /var/swap/t.swap\n    size: 64M\n"));
  EXPECT_NE(
      e.find("tiers[0].path: /var/swap/t.swap exists and is not a swap file: tierswap never overwrites it"),
      std::string::npos)
      << e;
}

TEST(MachineChecks, MountedPartition) {
  test::TempRoot root("01-desktop-default");
  test::spit(root.path() / "dev/vdb1", "");
  test::spit(root.path() / "proc/self/mounts", "/dev/vda / ext4 rw 0 0\n/dev/vdb1 /data ext4 rw 0 0\n");
  const auto e = only_error(check(root, "tiers:\n  - name: p\n    kind: partition\n    device: /dev/vdb1\n"));
  EXPECT_NE(e.find(":4:13: tiers[0].device: /dev/vdb1 is mounted on /data: refusing to use it as swap"),
            std::string::npos)
      << e;
}

TEST(MachineChecks, UnknownUuid) {
  test::TempRoot root("01-desktop-default");
  const auto e =
      only_error(check(root, "tiers:\n  - name: p\n    kind: partition\n    device: UUID=0000-1111\n"));
  EXPECT_NE(e.find("tiers[0].device: UUID=0000-1111: no /dev/disk/by-uuid/0000-1111"), std::string::npos)
      << e;
}

TEST(MachineChecks, PartitionWithoutSwapSignatureIsNotFormatted) {
  test::TempRoot root("01-desktop-default");
  test::spit(root.path() / "dev/vdb2", std::string(4096, 'x'));
  const auto e = only_error(check(root, "tiers:\n  - name: p\n    kind: partition\n    device: /dev/vdb2\n"));
  EXPECT_NE(e.find("tierswap does not format partitions (run mkswap /dev/vdb2 yourself"), std::string::npos)
      << e;
}

TEST(MachineChecks, PartitionByLabel) {
  test::TempRoot root("01-desktop-default");
  auto header = *swap::make_swap_header(1 << 20, 4096, {}, "");
  test::spit(root.path() / "dev/vdb3", std::string(header.begin(), header.end()));
  std::filesystem::create_directories(root.path() / "dev/disk/by-label");
  std::filesystem::create_symlink("../../vdb3", root.path() / "dev/disk/by-label/swap");
  const auto c =
      check(root, "tiers:\n  - name: p\n    kind: partition\n    device: LABEL=swap\n    priority: 5\n");
  ASSERT_TRUE(c.ok) << (c.errors.empty() ? "" : c.errors.front());
  ASSERT_EQ(c.plan.steps.size(), 1u);
  EXPECT_EQ(c.plan.steps[0].op, "swapon");
  EXPECT_EQ(c.plan.steps[0].path, "/dev/vdb3");
}

TEST(MachineChecks, EveryErrorNotOnlyTheFirst) {
  test::TempRoot root("01-desktop-default");
  const auto c = check(root,
                       "tiers:\n  - name: z\n    kind: zram\n    size: 1G\n    algorithm: zstd\n"
                       "  - name: f\n    kind: file\n    path: /etc/tierswap.yaml/t.swap\n    size: 64M\n");
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.errors.size(), 2u);
}
