// `spill:` under a vram tier: the two kinds, and each bad input with its
// key path and fix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace tierswap::config {
namespace {

using namespace test;
using ::testing::HasSubstr;

std::string vram(const std::string& spill) {
  return "tiers:\n  - name: gpu\n    kind: vram\n    size: 4G\n    spill: " + spill + "\n";
}

TEST(Spill, Lz4) {
  auto r = load(vram("{kind: lz4}"));
  ASSERT_TRUE(r.spec) << dump(r);
  const Tier* t = find_tier(*r.spec, "gpu");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->spill, "lz4");
  EXPECT_EQ(t->spill_path, "");
}

TEST(Spill, File) {
  auto r = load(vram("{kind: file, path: /var/lib/tierswap/spill-gpu}"));
  ASSERT_TRUE(r.spec) << dump(r);
  const Tier* t = find_tier(*r.spec, "gpu");
  EXPECT_EQ(t->spill, "file");
  EXPECT_EQ(t->spill_path, "/var/lib/tierswap/spill-gpu");
}

TEST(Spill, NoSpillByDefault) {
  auto r = load("tiers:\n  - name: gpu\n    kind: vram\n    size: 4G\n");
  ASSERT_TRUE(r.spec) << dump(r);
  EXPECT_EQ(find_tier(*r.spec, "gpu")->spill, "");
}

TEST(Spill, UnknownKind) {
  Diagnostic d = only_error(load(vram("{kind: zstd}")));
  EXPECT_EQ(d.path, "tiers[0].spill.kind");
  EXPECT_THAT(d.message, HasSubstr("zstd"));
  EXPECT_THAT(d.hint, HasSubstr("lz4"));
}

TEST(Spill, FileWithoutPath) {
  Diagnostic d = only_error(load(vram("{kind: file}")));
  EXPECT_EQ(d.path, "tiers[0].spill.path");
  EXPECT_THAT(d.message, HasSubstr("needs a path"));
}

TEST(Spill, RelativePathAndWhitespace) {
  Diagnostic d = only_error(load(vram("{kind: file, path: spill}")));
  EXPECT_EQ(d.path, "tiers[0].spill.path");
  EXPECT_THAT(d.message, HasSubstr("absolute"));
  d = only_error(load(vram("{kind: file, path: \"/var/lib/my spill\"}")));
  EXPECT_THAT(d.message, HasSubstr("whitespace"));
}

TEST(Spill, Lz4WithAPath) {
  Diagnostic d = only_error(load(vram("{kind: lz4, path: /var/lib/x}")));
  EXPECT_EQ(d.path, "tiers[0].spill.path");
  EXPECT_THAT(d.message, HasSubstr("takes no path"));
}

TEST(Spill, MissingKindAndNotAMap) {
  Diagnostic d = only_error(load(vram("{path: /var/lib/x}")));
  EXPECT_EQ(d.path, "tiers[0].spill.kind");
  d = only_error(load(vram("lz4")));
  EXPECT_EQ(d.path, "tiers[0].spill");
  EXPECT_THAT(d.hint, HasSubstr("kind: lz4"));
}

TEST(Spill, UnknownKeyInside) {
  Diagnostic d = only_error(load(vram("{kind: lz4, level: 9}")));
  EXPECT_EQ(d.path, "tiers[0].spill.level");
}

TEST(Spill, OnlyOnVram) {
  Diagnostic d =
      only_error(load("tiers:\n  - name: z\n    kind: zram\n    size: 4G\n    spill: {kind: lz4}\n"));
  EXPECT_EQ(d.path, "tiers[0].spill");
}

}  // namespace
}  // namespace tierswap::config
