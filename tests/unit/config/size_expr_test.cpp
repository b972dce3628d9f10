// Size expressions: every form of the grammar and every error.
#include "config/size_expr.hpp"

#include <gtest/gtest.h>

#include <string>

#include "config/loader.hpp"
#include "test_util.hpp"

namespace tierswap::config {
namespace {

using namespace test;

std::uint64_t size_of(std::string_view expr, HostFacts h = host(16 * GiB, 80 * GiB)) {
  auto r = parse_size(expr, h);
  EXPECT_TRUE(r.has_value()) << expr << ": " << (r ? "" : r.error().message);
  return r.value_or(0);
}

std::string error_of(std::string_view expr, HostFacts h = host()) {
  auto r = parse_size(expr, h);
  EXPECT_FALSE(r.has_value()) << expr << " parsed as " << r.value_or(0);
  return r ? "" : r.error().message;
}

TEST(SizeExpr, Suffixes) {
  EXPECT_EQ(size_of("8G"), 8 * GiB);
  EXPECT_EQ(size_of("512M"), 512 * MiB);
  EXPECT_EQ(size_of("4096K"), 4096 * KiB);
  EXPECT_EQ(size_of("2T"), 2048 * GiB);
}

TEST(SizeExpr, IecSuffixesAndLowercase) {
  EXPECT_EQ(size_of("8GiB"), 8 * GiB);
  EXPECT_EQ(size_of("512MiB"), 512 * MiB);
  EXPECT_EQ(size_of("4kib"), 4 * KiB);
  EXPECT_EQ(size_of("1TiB"), 1024 * GiB);
  EXPECT_EQ(size_of("8g"), 8 * GiB);
  EXPECT_EQ(size_of("512m"), 512 * MiB);
  EXPECT_EQ(size_of("8 G"), 8 * GiB);
}

TEST(SizeExpr, Fraction) {
  EXPECT_EQ(size_of("1.5G"), 3 * GiB / 2);
}

TEST(SizeExpr, PlainBytes) {
  EXPECT_EQ(size_of("1048576"), MiB);
  EXPECT_EQ(size_of("4096B"), 4096u);
}

TEST(SizeExpr, PercentOfRam) {
  EXPECT_EQ(size_of("50%"), 8 * GiB);
  EXPECT_EQ(size_of("25% of ram"), 4 * GiB);
  EXPECT_EQ(size_of("10%", host(10 * GiB)), GiB);
}

TEST(SizeExpr, RamArithmetic) {
  EXPECT_EQ(size_of("ram * 0.25"), 4 * GiB);
  EXPECT_EQ(size_of("ram / 2"), 8 * GiB);
  EXPECT_EQ(size_of("ram - 12G"), 4 * GiB);
  EXPECT_EQ(size_of("1G + 512M"), GiB + 512 * MiB);
  EXPECT_EQ(size_of("(ram + 4G) / 4"), 5 * GiB);
  EXPECT_EQ(size_of("0.25 * ram"), 4 * GiB);
  EXPECT_EQ(size_of("RAM / 2"), 8 * GiB);
}

TEST(SizeExpr, MinMax) {
  EXPECT_EQ(size_of("min(ram / 2, 8G)", host(4 * GiB)), 2 * GiB);
  EXPECT_EQ(size_of("min(ram / 2, 8G)", host(64 * GiB)), 8 * GiB);
  EXPECT_EQ(size_of("max(ram / 4, 2G)", host(4 * GiB)), 2 * GiB);
  EXPECT_EQ(size_of("max(1G, 2G, 3G)"), 3 * GiB);
  EXPECT_EQ(size_of("min(max(ram / 8, 1G), 4G)", host(64 * GiB)), 4 * GiB);
}

TEST(SizeExpr, Vram) {
  EXPECT_EQ(size_of("25% of vram"), 20 * GiB);
  EXPECT_EQ(size_of("vram / 2"), 40 * GiB);
}

TEST(SizeExpr, VramUnknownKeepsTheExpressionUnresolved) {
  auto v = evaluate_size("25% of vram", host(), SizeOptions{.allow_vram = true});
  ASSERT_TRUE(v.has_value()) << v.error().message;
  EXPECT_FALSE(v->resolved);
  EXPECT_EQ(v->bytes, 0u);
  EXPECT_NE(error_of("25% of vram").find("unknown"), std::string::npos);
}

TEST(SizeExpr, VramRefusedOutsideVramTiers) {
  auto v = evaluate_size("25% of vram", host(16 * GiB, 80 * GiB), SizeOptions{});
  ASSERT_FALSE(v.has_value());
  EXPECT_NE(v.error().message.find("only a vram tier"), std::string::npos);
}

TEST(SizeExpr, PageRounding) {
  auto v = evaluate_size("10000", host(), SizeOptions{.round_to_page = true});
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->bytes, 8192u);
  auto thirds = evaluate_size("ram / 3", host(1 * GiB), SizeOptions{.round_to_page = true});
  ASSERT_TRUE(thirds.has_value());
  EXPECT_EQ(thirds->bytes % 4096, 0u);
  auto tiny = evaluate_size("100", host(), SizeOptions{.round_to_page = true});
  ASSERT_FALSE(tiny.has_value());
  EXPECT_NE(tiny.error().message.find("at least one page"), std::string::npos);
}

TEST(SizeExpr, Garbage) {
  EXPECT_EQ(error_of("12X"), "\"12X\" is not a size (try 8G, 50%, min(ram / 2, 8G))");
  EXPECT_EQ(error_of("8GB"), "\"8GB\" is not a size (try 8G, 50%, min(ram / 2, 8G))");
  EXPECT_EQ(error_of("lots"), "\"lots\" is not a size (try 8G, 50%, min(ram / 2, 8G))");
  EXPECT_EQ(error_of(""), "\"\" is not a size (try 8G, 50%, min(ram / 2, 8G))");
}

TEST(SizeExpr, SyntaxErrors) {
  for (const char* bad : {"min(ram / 2, 8G", "min ram", "(8G", "8G)", "1..5G", "2 ram", "ram *",
                          "50% of disk", "sqrt(8G)", "8G 4G"})
    EXPECT_NE(error_of(bad).find("is not a size"), std::string::npos) << bad;
}

TEST(SizeExpr, Zero) {
  EXPECT_EQ(error_of("0"), "size must be greater than zero (\"0\") (try 8G, 50%, min(ram / 2, 8G))");
  EXPECT_NE(error_of("0G").find("greater than zero"), std::string::npos);
  EXPECT_NE(error_of("ram - ram").find("greater than zero"), std::string::npos);
}

TEST(SizeExpr, Negative) {
  EXPECT_NE(error_of("-1G").find("greater than zero (\"-1G\")"), std::string::npos);
  EXPECT_NE(error_of("4G - ram").find("greater than zero"), std::string::npos);
}

TEST(SizeExpr, DimensionErrors) {
  EXPECT_NE(error_of("ram * 8G").find("multiplies two sizes"), std::string::npos);
  EXPECT_NE(error_of("2 / ram").find("divides a number by a size"), std::string::npos);
  EXPECT_NE(error_of("ram / 0").find("divides by zero"), std::string::npos);
}

TEST(SizeExpr, TooLarge) {
  EXPECT_NE(error_of("ram * 1000000000").find("too large"), std::string::npos);
}

// Found by tests/fuzz: deep nesting used to overflow the stack.
TEST(SizeExpr, NestingIsBounded) {
  EXPECT_EQ(size_of(std::string(60, '(') + "1G" + std::string(60, ')')), GiB);
  EXPECT_NE(error_of(std::string(100000, '(') + "1G" + std::string(100000, ')')).find("nests too deeply"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(100000, '-') + "1G").find("nests too deeply"), std::string::npos);
  EXPECT_NE(error_of([] {
              std::string s;
              for (int i = 0; i < 50000; ++i) s += "min(";
              return s + "1G";
            }())
                .find("nests too deeply"),
            std::string::npos);
}

TEST(SizeExpr, RamUnknown) {
  EXPECT_NE(error_of("50%", host(0)).find("RAM size"), std::string::npos);
}

}  // namespace
}  // namespace tierswap::config
