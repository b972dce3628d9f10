// The loader end to end: valid configs, the embedded default, the example
// files shipped in packaging/examples/, and what the planner needs (locs).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.hpp"

namespace tierswap::config {
namespace {

using namespace test;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::filesystem::path kExamples = std::filesystem::path(TIERSWAP_SOURCE_DIR) / "packaging/examples";

TEST(Loader, FullTierSet) {
  const char* yaml =
      "version: 1\n"
      "tiers:\n"
      "  - name: fast\n"
      "    kind: zram\n"
      "    size: 25%\n"
      "    algorithm: zstd\n"
      "    recompress: { algorithm: lz4hc, when: huge }\n"
      "    mem_limit: 2G\n"
      "    discard: true\n"
      "  - name: disk\n"
      "    kind: file\n"
      "    path: /var/swap/tierswap\n"
      "    size: \"1048576\"\n"
      "  - name: part\n"
      "    kind: partition\n"
      "    device: UUID=1234-abcd\n"
      "    priority: -1\n"
      "  - name: gpu\n"
      "    kind: vram\n"
      "    size: 25% of vram\n"
      "    gpu: 0\n";
  auto r = load(yaml, host(16 * GiB, 80 * GiB));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const Spec& s = *r.spec;
  ASSERT_EQ(s.tiers.size(), 4u);
  EXPECT_EQ(s.source, "test.yaml");
  EXPECT_EQ(s.profile, Profile::none);

  const Tier& fast = s.tiers[0];
  EXPECT_EQ(fast.size_bytes, 4 * GiB);
  EXPECT_THAT(fast.algorithms, ElementsAre("zstd"));
  ASSERT_TRUE(fast.recompress);
  EXPECT_EQ(fast.recompress->algorithm, "lz4hc");
  EXPECT_EQ(fast.recompress->when, RecompressWhen::huge);
  EXPECT_EQ(fast.mem_limit_bytes, 2 * GiB);
  EXPECT_TRUE(fast.discard);
  EXPECT_EQ(fast.priority, 100);

  const Tier& disk = s.tiers[1];
  EXPECT_EQ(disk.kind, TierKind::file);
  EXPECT_EQ(disk.path, "/var/swap/tierswap");
  EXPECT_EQ(disk.size_bytes, MiB);
  EXPECT_EQ(disk.priority, 10);
  EXPECT_FALSE(disk.discard);

  const Tier& part = s.tiers[2];
  EXPECT_EQ(part.device, "UUID=1234-abcd");
  EXPECT_EQ(part.priority, -1);
  EXPECT_EQ(part.size_bytes, 0u);

  const Tier& gpu = s.tiers[3];
  EXPECT_EQ(gpu.size_bytes, 20 * GiB);
  EXPECT_EQ(gpu.gpu, "0");
  EXPECT_EQ(gpu.priority, 50);
}

TEST(Loader, RecordsLocationsForThePlanner) {
  const char* yaml =
      "sysctl:\n"
      "  vm.swappiness: 100\n"
      "zswap:\n"
      "  enabled: false\n"
      "  compressor: [zstd, lzo]\n"
      "tiers:\n"
      "  - name: fast\n"
      "    kind: zram\n"
      "    size: 4G\n"
      "    algorithm: [zstd, lz4]\n"
      "    recompress:\n"
      "      algorithm: zstd\n";
  auto r = load(yaml);
  ASSERT_TRUE(r.ok()) << dump(r);
  const Spec& s = *r.spec;
  const Tier& t = s.tiers[0];
  EXPECT_EQ(t.locs.at("").line, 7);
  EXPECT_EQ(t.locs.at("").col, 5);
  EXPECT_EQ(t.locs.at("size").line, 9);
  EXPECT_EQ(t.locs.at("size").col, 11);
  EXPECT_EQ(t.locs.at("algorithm").line, 10);
  EXPECT_EQ(t.locs.at("recompress.algorithm").line, 12);
  EXPECT_EQ(t.locs.at("name").file, "test.yaml");
  EXPECT_EQ(s.zswap.locs.at("compressor").line, 5);
  EXPECT_THAT(s.zswap.compressors, ElementsAre("zstd", "lzo"));
  EXPECT_EQ(s.zswap.compressor, "zstd");
  EXPECT_EQ(s.sysctl_locs.at("vm.swappiness").line, 2);
  EXPECT_EQ(s.sysctl_locs.at("vm.swappiness").col, 18);
}

TEST(Loader, ZswapWithZramWarnsButLoads) {
  auto r = load(
      "zswap:\n  enabled: true\ntiers:\n  - name: z\n    kind: zram\n    size: 2G\n"
      "  - name: d\n    kind: file\n    path: /swapfile\n    size: 2G\n");
  ASSERT_TRUE(r.spec) << dump(r);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(format_diagnostic(r.diagnostics[0]),
            "test.yaml:2:12: warning: zswap.enabled: zswap is enabled together with a zram tier: pages get "
            "compressed twice (set zswap.enabled: false, or drop the zram tier)");
}

TEST(Loader, ZswapWithoutSwapDeviceWarns) {
  auto r = load("zswap:\n  enabled: true\n");
  ASSERT_TRUE(r.spec) << dump(r);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("no file, partition or vram tier"));
}

TEST(Loader, EqualPrioritiesAreNotAnError) {
  auto r =
      load("tiers:\n  - name: a\n    kind: zram\n    size: 1G\n  - name: b\n    kind: zram\n    size: 1G\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty());
}

TEST(Loader, EmptyDocumentIsAnEmptySpec) {
  auto r = load("# nothing here\n");
  ASSERT_TRUE(r.spec) << dump(r);
  EXPECT_TRUE(r.spec->tiers.empty());
  EXPECT_TRUE(r.spec->sysctl.empty());
}

TEST(Loader, VramTierUnresolvedWithoutGpu) {
  auto r = load("tiers:\n  - name: gpu\n    kind: vram\n    size: 25% of vram\n", host(16 * GiB, 0));
  ASSERT_TRUE(r.spec) << dump(r);
  EXPECT_EQ(r.spec->tiers[0].size_bytes, 0u);
  EXPECT_EQ(r.spec->tiers[0].size_text, "25% of vram");
}

TEST(Loader, SizesRoundDownToPages) {
  auto r = load("tiers:\n  - name: a\n    kind: zram\n    size: ram / 3\n", host(GiB + 4096));
  ASSERT_TRUE(r.spec) << dump(r);
  EXPECT_EQ(r.spec->tiers[0].size_bytes % 4096, 0u);
  EXPECT_EQ(r.spec->tiers[0].size_bytes, (GiB + 4096) / 3 / 4096 * 4096);
}

class EmbeddedDefault : public ::testing::TestWithParam<std::pair<std::uint64_t, std::uint64_t>> {};

TEST_P(EmbeddedDefault, ResolvesToHalfOfRamCappedAt8G) {
  auto [ram, expected] = GetParam();
  auto r = load_string(embedded_default_yaml(), kEmbeddedDefaultName, host(ram));
  ASSERT_TRUE(r.spec) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const Spec& s = *r.spec;
  EXPECT_EQ(s.source, "<embedded default>");
  ASSERT_EQ(s.tiers.size(), 1u);
  EXPECT_EQ(s.tiers[0].name, "zram");
  EXPECT_EQ(s.tiers[0].kind, TierKind::zram);
  EXPECT_EQ(s.tiers[0].size_bytes, expected);
  EXPECT_EQ(s.tiers[0].size_text, "min(ram / 2, 8G)");
  EXPECT_THAT(s.tiers[0].algorithms, ElementsAre("zstd", "lz4", "lzo-rle", "lzo"));
  EXPECT_EQ(s.tiers[0].priority, 100);
  EXPECT_EQ(s.sysctl.at("vm.swappiness"), 150);
  EXPECT_EQ(s.sysctl.at("vm.page-cluster"), 0);
  EXPECT_EQ(s.sysctl.size(), 2u);
  EXPECT_FALSE(s.zswap.enabled.has_value());
}

INSTANTIATE_TEST_SUITE_P(Ram, EmbeddedDefault,
                         ::testing::Values(std::make_pair(4 * GiB, 2 * GiB),
                                           std::make_pair(16 * GiB, 8 * GiB),
                                           std::make_pair(24 * GiB, 8 * GiB),
                                           std::make_pair(64 * GiB, 8 * GiB)));

TEST(Loader, EmbeddedDefaultMatchesTheDesktopProfile) {
  HostFacts h = host(12 * GiB);
  auto def = load_string(embedded_default_yaml(), kEmbeddedDefaultName, h);
  auto prof = load("profile: desktop\n", h);
  ASSERT_TRUE(def.spec && prof.spec);
  EXPECT_EQ(def.spec->sysctl, prof.spec->sysctl);
  ASSERT_EQ(prof.spec->tiers.size(), 1u);
  EXPECT_EQ(def.spec->tiers[0].size_bytes, prof.spec->tiers[0].size_bytes);
  EXPECT_EQ(def.spec->tiers[0].algorithms, prof.spec->tiers[0].algorithms);
}

class Examples : public ::testing::TestWithParam<const char*> {};

TEST_P(Examples, LoadWithoutErrors) {
  std::filesystem::path file = kExamples / GetParam();
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  // A big machine with a GPU so that every recipe resolves every size.
  auto r = load_file(file, host(64 * GiB, 80 * GiB));
  EXPECT_TRUE(r.ok()) << dump(r);
  ASSERT_TRUE(r.spec);
  for (const auto& t : r.spec->tiers)
    if (t.kind != TierKind::partition) {
      EXPECT_GT(t.size_bytes, 0u) << file << ": " << t.name;
    }
}

INSTANTIATE_TEST_SUITE_P(Packaging, Examples,
                         ::testing::Values("desktop.yaml", "server.yaml", "db.yaml", "k8s-node.yaml",
                                           "gpu-workstation.yaml", "full-reference.yaml", "desktop-16g.yaml",
                                           "desktop-32g.yaml", "laptop.yaml", "server-ssd.yaml",
                                           "db-server.yaml"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::string out;
                           for (char c : n.substr(0, n.find('.')))
                             if (std::isalnum(static_cast<unsigned char>(c))) out += c;
                           return out;
                         });

TEST(Loader, ExamplesAreAllListed) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(kExamples)) n += e.path().extension() == ".yaml";
  EXPECT_EQ(n, 11) << "a new example in packaging/examples/ should be added to the Examples test";
}

}  // namespace
}  // namespace tierswap::config
