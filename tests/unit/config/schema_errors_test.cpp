// One test per bad input: the exact key path, the location and the key
// parts of the message. Every error means no Spec.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_util.hpp"

namespace tierswap::config {
namespace {

using namespace test;
using ::testing::HasSubstr;

TEST(SchemaErrors, MalformedYaml) {
  auto r = load("tiers:\n  - name: zram\n    algorithm: [zstd, lz4\n    size: 8G\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "");
  EXPECT_THAT(d.message, HasSubstr("malformed YAML"));
  EXPECT_GT(d.loc.line, 0);
  EXPECT_EQ(d.loc.file, "test.yaml");
}

TEST(SchemaErrors, UnknownTierKeyWithDidYouMean) {
  auto r = load("tiers:\n  - name: zram\n    kind: zram\n    size: 4G\n    prority: 5\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(format_diagnostic(d),
            "test.yaml:5:5: tiers[0].prority: unknown key (did you mean \"priority\"?)");
}

TEST(SchemaErrors, UnknownTopLevelKey) {
  auto r = load("profil: desktop\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "profil");
  EXPECT_EQ(d.hint, "did you mean \"profile\"?");
}

TEST(SchemaErrors, UnknownKeyFarFromAnyListsAllowed) {
  auto r = load("zswap:\n  colour: blue\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "zswap.colour");
  EXPECT_THAT(d.hint, HasSubstr("allowed: enabled, compressor"));
}

TEST(SchemaErrors, WrongTypeInteger) {
  auto r = load("tiers:\n  - name: zram\n    kind: zram\n    size: 4G\n    priority: high\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "tiers[0].priority");
  EXPECT_EQ(d.message, "expected an integer, got \"high\"");
  EXPECT_EQ(d.loc.line, 5);
  EXPECT_EQ(d.loc.col, 15);
}

TEST(SchemaErrors, WrongTypeBool) {
  auto r = load("zswap:\n  enabled: maybe\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "zswap.enabled");
  EXPECT_EQ(d.message, "expected true or false, got \"maybe\"");
}

TEST(SchemaErrors, WrongTypeMapForList) {
  auto r = load("tiers:\n  name: zram\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "tiers");
  EXPECT_THAT(d.message, HasSubstr("expected a list of tiers, got a map"));
}

TEST(SchemaErrors, SizeNotASize) {
  auto r =
      load("tiers:\n  - name: a\n    kind: zram\n    size: 4G\n  - name: b\n    kind: zram\n    size: 12X\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(format_diagnostic(d),
            "test.yaml:7:11: tiers[1].size: \"12X\" is not a size (try 8G, 50%, min(ram / 2, 8G))");
}

TEST(SchemaErrors, NegativeSize) {
  auto r = load("tiers:\n  - name: a\n    kind: zram\n    size: -4G\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "tiers[0].size");
  EXPECT_EQ(d.message, "size must be greater than zero (\"-4G\")");
}

TEST(SchemaErrors, ZeroSize) {
  auto r = load("tiers:\n  - name: a\n    kind: zram\n    size: 0\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "tiers[0].size");
  EXPECT_EQ(d.message, "size must be greater than zero (\"0\")");
}

TEST(SchemaErrors, DuplicateTierNames) {
  auto r = load(
      "tiers:\n  - name: fast\n    kind: zram\n    size: 4G\n"
      "  - name: fast\n    kind: file\n    path: /swapfile\n    size: 4G\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "tiers[1].name");
  EXPECT_EQ(d.message, "duplicate tier name \"fast\"");
  EXPECT_THAT(d.hint, HasSubstr("tiers[0] on line 2"));
  EXPECT_EQ(d.loc.line, 5);
}

TEST(SchemaErrors, PriorityOutOfRange) {
  auto r = load("tiers:\n  - name: a\n    kind: zram\n    size: 4G\n    priority: 40000\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "tiers[0].priority");
  EXPECT_EQ(d.message, "40000 is out of range");
  EXPECT_EQ(d.hint, "allowed: -1..32767");
}

TEST(SchemaErrors, PriorityBelowMinusOne) {
  Diagnostic d = only_error(load("tiers:\n  - name: a\n    kind: zram\n    size: 4G\n    priority: -2\n"));
  EXPECT_EQ(d.message, "-2 is out of range");
}

TEST(SchemaErrors, SwappinessTooHigh) {
  auto r = load("sysctl:\n  vm.swappiness: 250\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(format_diagnostic(d),
            "test.yaml:2:18: sysctl.vm.swappiness: 250 is out of range (allowed: 0..200)");
}

TEST(SchemaErrors, SysctlNotAnInteger) {
  Diagnostic d = only_error(load("sysctl:\n  vm.page-cluster: 1.5\n"));
  EXPECT_EQ(d.path, "sysctl.vm.page-cluster");
  EXPECT_EQ(d.message, "expected an integer, got \"1.5\"");
}

TEST(SchemaErrors, ProfileLaptop) {
  auto r = load("profile: laptop\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "profile");
  EXPECT_EQ(d.message, "unknown profile \"laptop\"");
  EXPECT_THAT(d.hint, HasSubstr("valid: desktop, server, db, k8s-node, gpu-workstation"));
  EXPECT_EQ(d.loc.line, 1);
  EXPECT_EQ(d.loc.col, 10);
}

TEST(SchemaErrors, UnknownSysctlKey) {
  auto r = load("sysctl:\n  vm.dirty_ratio: 10\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "sysctl.vm.dirty_ratio");
  EXPECT_EQ(d.message, "not managed by tierswap");
  EXPECT_EQ(d.hint,
            "allowed: vm.swappiness, vm.page-cluster, vm.watermark_scale_factor, vm.vfs_cache_pressure, "
            "vm.min_free_kbytes");
}

TEST(SchemaErrors, MisspelledSysctlKey) {
  Diagnostic d = only_error(load("sysctl:\n  vm.swapiness: 10\n"));
  EXPECT_EQ(d.path, "sysctl.vm.swapiness");
  EXPECT_EQ(d.hint, "did you mean \"vm.swappiness\"?");
}

TEST(SchemaErrors, KeyFromAnotherKind) {
  auto r = load("tiers:\n  - name: a\n    kind: zram\n    size: 4G\n    path: /swapfile\n");
  Diagnostic d = only_error(r);
  EXPECT_EQ(d.path, "tiers[0].path");
  EXPECT_EQ(d.message, "\"path\" does not apply to a zram tier (it is a key of file tiers)");
  EXPECT_EQ(d.hint, "remove it, or set kind: file");
  EXPECT_EQ(d.loc.line, 5);
  EXPECT_EQ(d.loc.col, 5);
}

TEST(SchemaErrors, SizeOnPartition) {
  Diagnostic d =
      only_error(load("tiers:\n  - name: p\n    kind: partition\n    device: /dev/sdb2\n    size: 4G\n"));
  EXPECT_EQ(d.path, "tiers[0].size");
  EXPECT_THAT(d.message, HasSubstr("does not apply to a partition tier"));
}

TEST(SchemaErrors, MissingRequiredKeys) {
  auto r = load("tiers:\n  - name: f\n    kind: file\n");
  EXPECT_FALSE(r.spec);
  ASSERT_EQ(count(r, Severity::error), 2u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].path, "tiers[0].path");
  EXPECT_EQ(r.diagnostics[0].message, "missing: a file tier needs a path");
  EXPECT_EQ(r.diagnostics[1].path, "tiers[0].size");
  EXPECT_EQ(r.diagnostics[0].loc.line, 2);
}

TEST(SchemaErrors, MissingKind) {
  Diagnostic d = only_error(load("tiers:\n  - name: a\n    size: 4G\n"));
  EXPECT_EQ(d.path, "tiers[0].kind");
  EXPECT_THAT(d.message, HasSubstr("needs a kind"));
}

TEST(SchemaErrors, UnknownKind) {
  Diagnostic d = only_error(load("tiers:\n  - name: a\n    kind: ssd\n"));
  EXPECT_EQ(d.path, "tiers[0].kind");
  EXPECT_EQ(d.message, "unknown kind \"ssd\"");
}

TEST(SchemaErrors, MissingName) {
  Diagnostic d = only_error(load("tiers:\n  - kind: zram\n    size: 4G\n"));
  EXPECT_EQ(d.path, "tiers[0].name");
}

TEST(SchemaErrors, InvalidTierName) {
  Diagnostic d = only_error(load("tiers:\n  - name: my/tier\n    kind: zram\n    size: 4G\n"));
  EXPECT_EQ(d.path, "tiers[0].name");
  EXPECT_EQ(d.message, "\"my/tier\" is not a valid tier name");
  Diagnostic longer =
      only_error(load("tiers:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    kind: zram\n    size: 4G\n"));
  EXPECT_EQ(longer.path, "tiers[0].name");
}

TEST(SchemaErrors, RelativeFilePath) {
  Diagnostic d = only_error(load("tiers:\n  - name: f\n    kind: file\n    path: swapfile\n    size: 1G\n"));
  EXPECT_EQ(d.path, "tiers[0].path");
  EXPECT_EQ(d.message, "\"swapfile\" is not an absolute path");
}

TEST(SchemaErrors, BadPartitionDevice) {
  Diagnostic d = only_error(load("tiers:\n  - name: p\n    kind: partition\n    device: sdb2\n"));
  EXPECT_EQ(d.path, "tiers[0].device");
  EXPECT_THAT(d.hint, HasSubstr("UUID="));
}

TEST(SchemaErrors, VramSizeOnZram) {
  Diagnostic d = only_error(load("tiers:\n  - name: a\n    kind: zram\n    size: 25% of vram\n"));
  EXPECT_EQ(d.path, "tiers[0].size");
  EXPECT_THAT(d.message, HasSubstr("only a vram tier"));
}

TEST(SchemaErrors, RecompressWithoutAlgorithm) {
  Diagnostic d = only_error(
      load("tiers:\n  - name: a\n    kind: zram\n    size: 4G\n    recompress:\n      when: idle\n"));
  EXPECT_EQ(d.path, "tiers[0].recompress.algorithm");
}

TEST(SchemaErrors, RecompressBadWhen) {
  Diagnostic d =
      only_error(load("tiers:\n  - name: a\n    kind: zram\n    size: 4G\n    recompress: { algorithm: zstd, "
                      "when: always }\n"));
  EXPECT_EQ(d.path, "tiers[0].recompress.when");
  EXPECT_EQ(d.hint, "valid: idle, huge");
}

TEST(SchemaErrors, BadAlgorithmInList) {
  Diagnostic d =
      only_error(load("tiers:\n  - name: a\n    kind: zram\n    size: 4G\n    algorithm: [zstd, [lz4]]\n"));
  EXPECT_EQ(d.path, "tiers[0].algorithm[1]");
}

TEST(SchemaErrors, ZswapPercentOutOfRange) {
  Diagnostic d = only_error(load("zswap:\n  max_pool_percent: 0\n"));
  EXPECT_EQ(d.path, "zswap.max_pool_percent");
  EXPECT_EQ(d.hint, "allowed: 1..100");
}

TEST(SchemaErrors, UnsupportedVersion) {
  Diagnostic d = only_error(load("version: 2\n"));
  EXPECT_EQ(d.path, "version");
  EXPECT_EQ(d.message, "unsupported version 2");
}

TEST(SchemaErrors, DuplicateKey) {
  Diagnostic d = only_error(load("tiers:\n  - name: a\n    kind: zram\n    size: 4G\n    size: 8G\n"));
  EXPECT_EQ(d.path, "tiers[0].size");
  EXPECT_EQ(d.message, "duplicate key");
  EXPECT_EQ(d.loc.line, 5);
}

TEST(SchemaErrors, TopLevelNotAMap) {
  Diagnostic d = only_error(load("- zram\n"));
  EXPECT_EQ(d.path, "");
  EXPECT_THAT(d.message, HasSubstr("expected a map of settings"));
}

TEST(SchemaErrors, ManyErrorsCollectedWithPositions) {
  const char* yaml =
      "profile: laptop\n"       // 1
      "sysctl:\n"               // 2
      "  vm.swappiness: 250\n"  // 3
      "  vm.dirty_ratio: 5\n"   // 4
      "tiers:\n"                // 5
      "  - name: zram\n"        // 6
      "    kind: zram\n"        // 7
      "    size: 12X\n"         // 8
      "    prority: 5\n"        // 9
      "  - name: zram\n"        // 10
      "    kind: file\n"        // 11
      "    path: /swapfile\n"   // 12
      "    size: 1G\n";         // 13
  auto r = load(yaml);
  EXPECT_FALSE(r.spec);
  ASSERT_EQ(r.diagnostics.size(), 6u) << dump(r);
  std::vector<std::string> lines;
  for (const auto& d : r.diagnostics) lines.push_back(format_diagnostic(d));
  EXPECT_THAT(lines[0], HasSubstr("test.yaml:1:10: profile: unknown profile \"laptop\""));
  EXPECT_THAT(lines[1], HasSubstr("test.yaml:3:18: sysctl.vm.swappiness: 250 is out of range"));
  EXPECT_THAT(lines[2], HasSubstr("test.yaml:4:3: sysctl.vm.dirty_ratio: not managed by tierswap"));
  EXPECT_THAT(lines[3], HasSubstr("test.yaml:8:11: tiers[0].size: \"12X\" is not a size"));
  EXPECT_THAT(lines[4], HasSubstr("test.yaml:9:5: tiers[0].prority: unknown key"));
  EXPECT_THAT(lines[5], HasSubstr("test.yaml:10:11: tiers[1].name: duplicate tier name \"zram\""));
}

TEST(SchemaErrors, UnreadableFile) {
  auto r = load_file("/nonexistent/tierswap.yaml", host());
  Diagnostic d = only_error(r);
  EXPECT_EQ(format_diagnostic(d),
            "/nonexistent/tierswap.yaml: cannot read this file: No such file or directory "
            "(check the path and its permissions)");
}

TEST(SchemaErrors, FixtureFilesAllFail) {
  // tests/fixtures/config/bad-*.yaml: each must fail with exactly the error
  // named in its first line: "# expect: PATH: MESSAGE".
  namespace fs = std::filesystem;
  fs::path dir = fs::path(TIERSWAP_SOURCE_DIR) / "tests/fixtures/config";
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++seen;
    std::ifstream in(entry.path());
    std::string first;
    std::getline(in, first);
    ASSERT_TRUE(first.starts_with("# expect: ")) << entry.path();
    auto r = load_file(entry.path(), host());
    EXPECT_FALSE(r.spec) << entry.path();
    std::string all = dump(r);
    EXPECT_THAT(all, HasSubstr(first.substr(10))) << entry.path();
  }
  EXPECT_GT(seen, 0);
}

}  // namespace
}  // namespace tierswap::config
