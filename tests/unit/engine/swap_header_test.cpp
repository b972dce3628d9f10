// The swap header bytes, and the refusal to overwrite what is not ours.
#include "backends/swap/swap_header.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "fake_root.hpp"

using namespace tierswap;

namespace {
std::uint32_t u32(const std::vector<std::uint8_t>& p, size_t off) {
  std::uint32_t v;
  std::memcpy(&v, p.data() + off, 4);
  return v;
}
}  // namespace

TEST(SwapHeader, Layout) {
  swap::Uuid uuid{};
  for (int i = 0; i < 16; ++i) uuid[i] = static_cast<std::uint8_t>(i + 1);
  auto h = swap::make_swap_header(64ull << 20, 4096, uuid);
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 4096u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(h->data()) + 4096 - 10, 10), "SWAPSPACE2");
  EXPECT_EQ(u32(*h, 1024), 1u);                      // version
  EXPECT_EQ(u32(*h, 1028), (64u << 20) / 4096 - 1);  // last_page
  EXPECT_EQ(u32(*h, 1032), 0u);                      // nr_badpages
  EXPECT_EQ(std::memcmp(h->data() + 1036, uuid.data(), 16), 0);
  EXPECT_STREQ(reinterpret_cast<const char*>(h->data()) + 1052, "tierswap");
  for (size_t i = 0; i < 1024; ++i) ASSERT_EQ((*h)[i], 0) << "bootbits byte " << i;
  EXPECT_EQ(swap::classify_first_page(*h), swap::FirstPage::ours);
}

TEST(SwapHeader, TooSmallOrTooBig) {
  EXPECT_FALSE(swap::make_swap_header(9 * 4096, 4096, {}));
  EXPECT_TRUE(swap::make_swap_header(10 * 4096, 4096, {}));
  EXPECT_FALSE(swap::make_swap_header((1ull << 32) * 4096 + 4096, 4096, {}));
}

TEST(SwapHeader, Classify) {
  std::vector<std::uint8_t> page(4096, 0);
  EXPECT_EQ(swap::classify_first_page(page), swap::FirstPage::empty);
  auto foreign = *swap::make_swap_header(1 << 20, 4096, {}, "");
  EXPECT_EQ(swap::classify_first_page(foreign), swap::FirstPage::foreign_swap);
  page[7] = 'x';
  EXPECT_EQ(swap::classify_first_page(page), swap::FirstPage::other);
}

TEST(SwapHeader, RefusesToOverwriteData) {
  test::TempRoot root;
  const auto f = (root.path() / "data").string();
  test::spit(f, std::string(8192, 'd'));
  auto r = swap::write_swap_header(f, "/data", 8192 * 10, 4096);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EEXIST);
  EXPECT_NE(r.error().message.find("/data holds data that is not a swap area"), std::string::npos);
  EXPECT_EQ(test::slurp(f), std::string(8192, 'd'));
}

TEST(SwapHeader, WritesEmptyAndRewritesOurs) {
  test::TempRoot root;
  const auto f = (root.path() / "swap").string();
  test::spit(f, std::string(40960, '\0'));
  ASSERT_TRUE(swap::write_swap_header(f, "/swap", 40960, 4096));
  EXPECT_EQ(*swap::probe_first_page(f, 4096), swap::FirstPage::ours);
  ASSERT_TRUE(swap::write_swap_header(f, "/swap", 40960, 4096));
}
