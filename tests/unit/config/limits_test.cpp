// Bounds on what a config may ask for: min_free_kbytes against RAM, a zram
// tier's size against RAM, the size of the config text, and how far YAML
// aliases may expand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/schema.hpp"
#include "config/yaml_limits.hpp"
#include "test_util.hpp"

namespace tierswap::config {
namespace {

using namespace test;
using ::testing::HasSubstr;

TEST(Limits, MinFreeKbytesAboveFivePercentOfRam) {
  // 16 GiB of RAM: 5% is 838860 kB.
  auto r = load("sysctl:\n  vm.min_free_kbytes: 2000000000\n", host(16 * GiB));
  Diagnostic d = only_error(r);
  EXPECT_EQ(format_diagnostic(d),
            "test.yaml:2:23: sysctl.vm.min_free_kbytes: 2000000000 kB is more than 5% of this machine's RAM "
            "(16777216 kB) (allowed: 1..838860; the kernel keeps this much free at all times)");
}

TEST(Limits, MinFreeKbytesAtTheBoundIsAccepted) {
  auto r = load("sysctl:\n  vm.min_free_kbytes: 838860\n", host(16 * GiB));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.spec->sysctl.at("vm.min_free_kbytes"), 838860);
  EXPECT_FALSE(load("sysctl:\n  vm.min_free_kbytes: 838861\n", host(16 * GiB)).ok());
}

TEST(Limits, MinFreeKbytesUnboundedWhenRamUnknown) {
  auto r = load("sysctl:\n  vm.min_free_kbytes: 2000000000\n", host(0));
  EXPECT_TRUE(r.ok()) << dump(r);
}

TEST(Limits, ZramLargerThanTwiceRam) {
  auto r = load("tiers:\n  - name: z\n    kind: zram\n    size: 33G\n", host(16 * GiB));
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "tiers[0].size");
  EXPECT_EQ(d.loc.line, 4);
  EXPECT_EQ(d.loc.col, 11);
  EXPECT_THAT(d.message, HasSubstr("is more than 2 times this machine's RAM"));
  EXPECT_THAT(d.hint, HasSubstr("at most 200%"));
}

TEST(Limits, ZramOfTwiceRamIsAccepted) {
  auto r = load("tiers:\n  - name: z\n    kind: zram\n    size: 200%\n", host(16 * GiB));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.spec->tiers[0].size_bytes, 32 * GiB);
}

TEST(Limits, FileTierMayExceedRam) {
  // Only zram keeps its pages in RAM; a swap file is bounded by the disk.
  auto r = load("tiers:\n  - name: d\n    kind: file\n    path: /swapfile\n    size: 64G\n", host(16 * GiB));
  EXPECT_TRUE(r.ok()) << dump(r);
}

TEST(Limits, TextOverOneMibIsRefused) {
  std::string yaml = "# " + std::string(kMaxConfigBytes, 'x') + "\n";
  Diagnostic d = only_error(load(yaml));
  EXPECT_EQ(format_diagnostic(d),
            "test.yaml: more than 1048576 bytes: too large for a config (a tierswap config is a few hundred "
            "bytes; check that this is the right file)");
}

// yaml-cpp reads text with a NUL byte as UTF-16/UTF-32 and reports
// positions that are not the bytes' (fuzz seed regression-nul-reads-as-utf16):
// such a config is refused before parsing, naming the byte's offset.
TEST(Limits, NulByteIsRefusedNamingItsOffsetLineAndColumn) {
  using namespace std::string_literals;
  Diagnostic d = only_error(load("version: 1\ntiers:\n  - na\0me: z\n"s));
  EXPECT_EQ(d.loc.line, 3);
  EXPECT_EQ(d.loc.col, 7);
  EXPECT_EQ(
      format_diagnostic(d),
      "test.yaml:3:7: a NUL byte at byte offset 24: a config is UTF-8 text (this is not a text file, or it "
      "is UTF-16/UTF-32: save it as UTF-8)");
  // The fuzz seed itself (a NUL among the first bytes) and a lone NUL.
  d = only_error(load("\0v"s));
  EXPECT_EQ(format_diagnostic(d).substr(0, 44), "test.yaml:1:1: a NUL byte at byte offset 0: ");
  d = only_error(load("version: 1\n\0"s));
  EXPECT_EQ(d.loc.line, 2);
  EXPECT_EQ(d.loc.col, 1);
}

TEST(Limits, Utf16ConfigFileIsRefusedAsNotUtf8) {
  const auto path =
      std::filesystem::temp_directory_path() / ("tierswap-utf16-" + std::to_string(getpid()) + ".yaml");
  {
    std::ofstream out(path, std::ios::binary);
    for (char c : std::string("version: 1\n")) out << c << '\0';  // UTF-16LE, no BOM
  }
  auto r = load_file(path, host());
  std::filesystem::remove(path);
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.loc.file, path.string());
  EXPECT_THAT(d.message, HasSubstr("a NUL byte at byte offset 1"));
}

TEST(Limits, FileOverOneMibIsRefusedWithItsName) {
  const auto path =
      std::filesystem::temp_directory_path() / ("tierswap-big-" + std::to_string(getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "version: 1\n";
    for (std::size_t i = 0; i < kMaxConfigBytes / 8; ++i) out << "# 34567\n";
  }
  auto r = load_file(path, host());
  std::filesystem::remove(path);
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.loc.file, path.string());
  EXPECT_THAT(d.message, HasSubstr("too large for a config"));
}

TEST(Limits, FileJustUnderTheCapLoads) {
  const auto path =
      std::filesystem::temp_directory_path() / ("tierswap-cap-" + std::to_string(getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "version: 1\n" << std::string(kMaxConfigBytes - 12, '#') << "\n";
  }
  ASSERT_EQ(std::filesystem::file_size(path), kMaxConfigBytes);
  auto r = load_file(path, host());
  std::filesystem::remove(path);
  EXPECT_TRUE(r.ok()) << dump(r);
}

// Nine levels of ten aliases: 10^9 nodes once expanded, in 600 bytes.
std::string billion_laughs(const std::string& where) {
  std::string y = "x-0: &l0 [lz4, lz4, lz4, lz4, lz4, lz4, lz4, lz4, lz4, lz4]\n";
  for (int i = 1; i < 9; ++i) {
    y += "x-" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) y += (j ? ", *l" : "*l") + std::to_string(i - 1);
    y += "]\n";
  }
  return y + where;
}

TEST(Limits, BillionLaughsIsRefused) {
  auto r = load(billion_laughs("tiers:\n  - name: z\n    kind: zram\n    size: 1G\n    algorithm: *l8\n"));
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.message, "aliases expand to more than 10000 nodes");
  // The alias that crossed the bound: the eighth *l2 in x-3 (x-1's aliases
  // add 10 * 11 nodes, x-2's 10 * 111, x-3's 8 * 1111: 10,108 in all).
  EXPECT_EQ(d.loc.line, 4);
  EXPECT_EQ(d.path, "x-3[7]");
  EXPECT_THAT(format_diagnostic(d), HasSubstr("(a tierswap config needs a few dozen"));
}

TEST(Limits, ModestAliasesAreFine) {
  auto r = load(
      "tiers:\n"
      "  - { name: a, kind: zram, size: 1G, algorithm: &algos [zstd, lz4] }\n"
      "  - { name: b, kind: zram, size: 1G, algorithm: *algos, priority: 90 }\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.spec->tiers[1].algorithms, r.spec->tiers[0].algorithms);
  EXPECT_FALSE(check_alias_expansion("a: &a [1, 2]\nb: *a\nc: *a\n", "t.yaml"));
}

TEST(Limits, AliasBoundCountsExpandedSubtrees) {
  // One anchor of 1000 scalars (1001 nodes) aliased 9 times: 9009 nodes,
  // within the bound; the tenth alias crosses it.
  std::string list = "[";
  for (int i = 0; i < 1000; ++i) list += (i ? ", 1" : "1");
  list += "]";
  std::string y = "a: &a " + list + "\nb: [";
  for (int i = 0; i < 9; ++i) y += (i ? ", *a" : "*a");
  EXPECT_FALSE(check_alias_expansion(y + "]\n", "t.yaml"));
  auto d = check_alias_expansion(y + ", *a]\n", "t.yaml");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->path, "b[9]");
  EXPECT_EQ(d->loc.line, 2);
}

}  // namespace
}  // namespace tierswap::config
