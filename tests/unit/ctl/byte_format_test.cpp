// common/byte_format.hpp: the daemon's sentences and tierswapctl's tables
// read as they did before the two formatters became one.
#include "common/byte_format.hpp"

#include <gtest/gtest.h>

#include "common/tier_name.hpp"

namespace tierswap {
namespace {

constexpr std::uint64_t MiB = 1024 * 1024;

TEST(ByteFormat, Sentences) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(63 * MiB), "63 MiB");
  EXPECT_EQ(format_bytes(200 * MiB), "200 MiB");
  EXPECT_EQ(format_bytes(1288490188), "1.2 GiB");
}

TEST(ByteFormat, Tables) {
  EXPECT_EQ(format_bytes_short(0), "0B");
  EXPECT_EQ(format_bytes_short(1536), "1.5K");
  EXPECT_EQ(format_bytes_short(MiB), "1.0M");
  EXPECT_EQ(format_bytes_short(16777216000), "15.6G");
  EXPECT_EQ(format_bytes_short(17179869184), "16.0G");
  EXPECT_EQ(format_bytes_short(200 * MiB), "200M");
}

// The policy engine's whole-MiB form (its reasons and goldens).
TEST(ByteFormat, WholeMiB) {
  EXPECT_EQ(format_mib(0), "0 MiB");
  EXPECT_EQ(format_mib(MiB - 1), "0 MiB");
  EXPECT_EQ(format_mib(MiB + MiB / 2), "1 MiB");
  EXPECT_EQ(format_mib(1024 * MiB), "1024 MiB");
}

TEST(TierName, OneRule) {
  EXPECT_TRUE(check_tier_name("a-b_C9"));
  EXPECT_TRUE(check_tier_name(std::string(32, 'a')));
  EXPECT_FALSE(check_tier_name(std::string(33, 'a')));
  EXPECT_FALSE(check_tier_name(""));
  const auto r = check_tier_name("a b");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::invalid_argument);
  EXPECT_NE(r.error().message.find("0x20 at position 2"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace tierswap
