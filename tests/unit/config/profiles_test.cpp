// Profiles: each recipe, and the user's keys over it.
#include "config/profiles.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace tierswap::config {
namespace {

using namespace test;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Spec ok_spec(const LoadResult& r) {
  EXPECT_TRUE(r.ok()) << dump(r);
  return r.spec.value_or(Spec{});
}

constexpr const char* kDiskTier =
    "tiers:\n  - name: disk\n    kind: file\n    path: /var/swap/tierswap\n    size: 4G\n";

TEST(Profiles, Desktop) {
  auto r = load("profile: desktop\n", host(16 * GiB));
  Spec s = ok_spec(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  EXPECT_EQ(s.profile, Profile::desktop);
  ASSERT_EQ(s.tiers.size(), 1u);
  const Tier& z = s.tiers[0];
  EXPECT_EQ(z.name, "zram");
  EXPECT_EQ(z.kind, TierKind::zram);
  EXPECT_EQ(z.size_text, "min(ram / 2, 8G)");
  EXPECT_EQ(z.size_bytes, 8 * GiB);
  EXPECT_THAT(z.algorithms, ElementsAre("zstd", "lz4", "lzo-rle", "lzo"));
  EXPECT_EQ(z.priority, 100);
  EXPECT_EQ(s.sysctl.at("vm.swappiness"), 150);
  EXPECT_EQ(s.sysctl.at("vm.page-cluster"), 0);
  EXPECT_EQ(s.zswap.enabled, false);
  // Profile values are located at the file, line 0.
  EXPECT_EQ(z.locs.at("size").line, 0);
  EXPECT_EQ(z.locs.at("size").file, "test.yaml");
  EXPECT_EQ(s.sysctl_locs.at("vm.swappiness").line, 0);
}

TEST(Profiles, DesktopSmallRam) {
  Spec s = ok_spec(load("profile: desktop\n", host(4 * GiB)));
  EXPECT_EQ(s.tiers[0].size_bytes, 2 * GiB);
}

TEST(Profiles, DesktopBigRamWarnsWithoutDiskTier) {
  auto r = load("profile: desktop\n", host(64 * GiB));
  ASSERT_TRUE(r.spec) << dump(r);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  const Diagnostic& d = r.diagnostics[0];
  EXPECT_EQ(d.severity, Severity::warning);
  EXPECT_EQ(d.path, "profile");
  EXPECT_THAT(d.message, HasSubstr("small disk swap"));
  EXPECT_EQ(d.loc.line, 1);
  EXPECT_EQ(r.spec->tiers[0].size_bytes, 8 * GiB);
}

TEST(Profiles, DesktopBigRamWithDiskTierIsQuiet) {
  auto r = load(std::string("profile: desktop\n") + kDiskTier, host(64 * GiB));
  Spec s = ok_spec(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  // The file's tiers: list replaces the profile's: no zram tier remains.
  ASSERT_EQ(s.tiers.size(), 1u);
  EXPECT_EQ(s.tiers[0].name, "disk");
  EXPECT_EQ(s.tiers[0].priority, 10);
}

TEST(Profiles, DesktopBigRamHintKeepsTheProfileTier) {
  // Following the hint must not lose the zram tier: a tiers: list replaces
  // the profile's, so the hint says to list it too.
  auto r = load("profile: desktop\n", host(64 * GiB));
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_THAT(r.diagnostics[0].hint, HasSubstr("with the profile's \"zram\" tier and a disk tier"));
  EXPECT_THAT(r.diagnostics[0].hint, HasSubstr("a tiers: list replaces the profile's"));
}

TEST(Profiles, UserTiersReplaceProfileTiersWhateverTheirNames) {
  // The case that gave two zram devices at priority 100 when tiers were
  // merged by name.
  Spec s = ok_spec(load("profile: desktop\ntiers:\n  - name: fast\n    kind: zram\n    size: 2G\n"));
  ASSERT_EQ(s.tiers.size(), 1u);
  EXPECT_EQ(s.tiers[0].name, "fast");
  ASSERT_TRUE(s.tiers_loc);
  EXPECT_EQ(s.tiers_loc->line, 2);
  // The profile's other settings still apply.
  EXPECT_EQ(s.sysctl.at("vm.swappiness"), 150);
}

TEST(Profiles, EmptyTiersListAsksForNoTiers) {
  Spec s = ok_spec(load("profile: gpu-workstation\ntiers: []\n", host(32 * GiB)));
  EXPECT_TRUE(s.tiers.empty());
  EXPECT_EQ(s.zswap.enabled, false);
}

TEST(Profiles, NoTiersKeyKeepsProfileTiers) {
  Spec s = ok_spec(load("profile: gpu-workstation\nsysctl:\n  vm.swappiness: 120\n", host(32 * GiB)));
  ASSERT_EQ(s.tiers.size(), 2u);
  EXPECT_FALSE(s.tiers_loc);
  EXPECT_EQ(s.tiers[0].name, "zram");
  EXPECT_EQ(s.tiers[1].name, "vram");
}

TEST(Profiles, SettingsFromProfileAreListed) {
  Spec s = ok_spec(load("profile: desktop\nsysctl:\n  vm.swappiness: 100\n", host(16 * GiB)));
  std::vector<std::string> lines;
  for (const auto& p : profile_settings(s)) lines.push_back(p.key + " = " + p.value);
  EXPECT_THAT(lines, ElementsAre("sysctl.vm.page-cluster = 0", "zswap.enabled = false",
                                 "tiers[0] = zram (zram, min(ram / 2, 8G), priority 100)"));
}

TEST(Profiles, SettingsFromProfileLeaveOutTheFilesTiers) {
  Spec s = ok_spec(load(std::string("profile: server\nzswap:\n  compressor: lzo\n") + kDiskTier));
  std::vector<std::string> keys;
  for (const auto& p : profile_settings(s)) keys.push_back(p.key + " = " + p.value);
  EXPECT_THAT(keys, ElementsAre("sysctl.vm.swappiness = 60", "zswap.enabled = true",
                                "zswap.max_pool_percent = 20", "zswap.shrinker_enabled = true"));
}

TEST(Profiles, NoProfileNoProfileSettings) {
  EXPECT_TRUE(profile_settings(ok_spec(load("sysctl:\n  vm.swappiness: 100\n"))).empty());
}

TEST(Profiles, Server) {
  auto r = load("profile: server\n");
  Spec s = ok_spec(r);
  EXPECT_TRUE(s.tiers.empty());
  EXPECT_EQ(s.zswap.enabled, true);
  EXPECT_THAT(s.zswap.compressors, ElementsAre("zstd", "lz4", "lzo"));
  EXPECT_EQ(s.zswap.compressor, "zstd");
  EXPECT_EQ(s.zswap.max_pool_percent, 20);
  EXPECT_EQ(s.zswap.shrinker_enabled, true);
  EXPECT_EQ(s.sysctl.at("vm.swappiness"), 60);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].severity, Severity::warning);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("needs a swap device behind it"));
}

TEST(Profiles, ServerWithDiskTierIsQuiet) {
  auto r = load(std::string("profile: server\n") + kDiskTier);
  ok_spec(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
}

TEST(Profiles, Db) {
  auto r = load("profile: db\n");
  Spec s = ok_spec(r);
  EXPECT_EQ(s.sysctl.at("vm.swappiness"), 10);
  EXPECT_EQ(s.zswap.enabled, false);
  EXPECT_TRUE(s.tiers.empty());
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("small swap"));
}

TEST(Profiles, K8sNode) {
  auto r = load("profile: k8s-node\n");
  Spec s = ok_spec(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  EXPECT_TRUE(s.tiers.empty());
  EXPECT_EQ(s.zswap.enabled, false);
  EXPECT_TRUE(s.sysctl.empty());
}

TEST(Profiles, K8sNodeSwapsOnlyWhenAsked) {
  Spec s = ok_spec(load(std::string("profile: k8s-node\n") + kDiskTier));
  ASSERT_EQ(s.tiers.size(), 1u);
  EXPECT_EQ(s.tiers[0].name, "disk");
}

TEST(Profiles, GpuWorkstationVramUnknown) {
  Spec s = ok_spec(load("profile: gpu-workstation\n", host(32 * GiB, 0)));
  ASSERT_EQ(s.tiers.size(), 2u);
  EXPECT_EQ(s.tiers[0].name, "zram");
  const Tier& v = s.tiers[1];
  EXPECT_EQ(v.name, "vram");
  EXPECT_EQ(v.kind, TierKind::vram);
  EXPECT_EQ(v.priority, 50);
  EXPECT_EQ(v.size_text, "25% of vram");
  EXPECT_EQ(v.size_bytes, 0u);
  EXPECT_EQ(s.sysctl.at("vm.swappiness"), 150);
}

TEST(Profiles, GpuWorkstationVramKnown) {
  Spec s = ok_spec(load("profile: gpu-workstation\n", host(32 * GiB, 80 * GiB)));
  EXPECT_EQ(s.tiers[1].size_bytes, 20 * GiB);
}

TEST(Profiles, UserTierReplacesProfileTierOfSameName) {
  Spec s = ok_spec(
      load("profile: desktop\ntiers:\n  - name: zram\n    kind: zram\n    size: 2G\n    algorithm: lz4\n"));
  ASSERT_EQ(s.tiers.size(), 1u);
  EXPECT_EQ(s.tiers[0].size_bytes, 2 * GiB);
  EXPECT_THAT(s.tiers[0].algorithms, ElementsAre("lz4"));
  EXPECT_EQ(s.tiers[0].priority, 100);
  EXPECT_EQ(s.tiers[0].locs.at("size").line, 5);
}

TEST(Profiles, UserSysctlOverridesKeyByKey) {
  Spec s = ok_spec(load("profile: desktop\nsysctl:\n  vm.swappiness: 100\n  vm.vfs_cache_pressure: 50\n"));
  EXPECT_EQ(s.sysctl.at("vm.swappiness"), 100);
  EXPECT_EQ(s.sysctl_locs.at("vm.swappiness").line, 3);
  EXPECT_EQ(s.sysctl.at("vm.page-cluster"), 0);
  EXPECT_EQ(s.sysctl_locs.at("vm.page-cluster").line, 0);
  EXPECT_EQ(s.sysctl.at("vm.vfs_cache_pressure"), 50);
}

TEST(Profiles, UserZswapOverridesKeyByKey) {
  Spec s = ok_spec(
      load(std::string("profile: server\nzswap:\n  compressor: lzo\n  max_pool_percent: 30\n") + kDiskTier));
  EXPECT_EQ(s.zswap.enabled, true);
  EXPECT_THAT(s.zswap.compressors, ElementsAre("lzo"));
  EXPECT_EQ(s.zswap.compressor, "lzo");
  EXPECT_EQ(s.zswap.max_pool_percent, 30);
  EXPECT_EQ(s.zswap.shrinker_enabled, true);
  EXPECT_EQ(s.zswap.locs.at("max_pool_percent").line, 4);
  EXPECT_EQ(s.zswap.locs.at("shrinker_enabled").line, 0);
}

TEST(Profiles, ZswapWithZramWarns) {
  auto r =
      load(std::string("profile: server\ntiers:\n  - name: z\n    kind: zram\n    size: 2G\n"
                       "  - name: disk\n    kind: file\n    path: /swapfile\n    size: 4G\n"));
  ok_spec(r);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].severity, Severity::warning);
  EXPECT_EQ(r.diagnostics[0].path, "zswap.enabled");
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("pages get compressed twice"));
}

}  // namespace
}  // namespace tierswap::config
