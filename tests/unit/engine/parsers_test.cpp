// Text-in, values-out parsers of the engine: /proc/swaps, comp_algorithm,
// /proc/crypto, /proc/self/mounts, /proc/meminfo.
#include <gtest/gtest.h>

#include "backends/disk/disk.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "backends/zram/zram.hpp"
#include "backends/zswap/zswap.hpp"
#include "daemon/observe.hpp"

using namespace tierswap;

TEST(ProcSwaps, ParsesHeaderAndAreas) {
  auto r = swap::parse_proc_swaps(
      "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
      "/dev/zram1                              partition\t262140\t\t1024\t\t100\n"
      "/var/tmp/my\\040swap                     file\t\t65532\t\t0\t\t-2\n");
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].path, "/dev/zram1");
  EXPECT_EQ((*r)[0].type, "partition");
  EXPECT_EQ((*r)[0].size_kib, 262140u);
  EXPECT_EQ((*r)[0].used_kib, 1024u);
  EXPECT_EQ((*r)[0].priority, 100);
  EXPECT_EQ((*r)[1].path, "/var/tmp/my swap");
  EXPECT_EQ((*r)[1].priority, -2);
  EXPECT_TRUE(swap::find_area(*r, "/dev/zram1"));
  EXPECT_FALSE(swap::find_area(*r, "/dev/zram2"));
}

TEST(ProcSwaps, EmptyMeansNoAreas) {
  auto r = swap::parse_proc_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
}

TEST(ProcSwaps, MalformedLineNamesIt) {
  auto r = swap::parse_proc_swaps("Filename Type Size Used Priority\n/dev/zram0 partition 12 x 5\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos);
  EXPECT_FALSE(swap::parse_proc_swaps("Filename Type\n/dev/zram0 partition\n"));
}

TEST(CompAlgorithm, SelectedAndAll) {
  auto a = zram::parse_comp_algorithm("[lzo-rle] lzo lz4 \n");
  EXPECT_EQ(a.selected, "lzo-rle");
  EXPECT_EQ(a.all, (std::vector<std::string>{"lzo-rle", "lzo", "lz4"}));
  EXPECT_EQ(zram::parse_comp_algorithm("lzo-rle lzo [lz4]").selected, "lz4");
  EXPECT_EQ(zram::parse_comp_algorithm("lz4\n").selected, "lz4");
  EXPECT_TRUE(zram::parse_comp_algorithm("").all.empty());
}

TEST(Crypto, CompressorsOnly) {
  const auto c = zswap::parse_crypto_compressors(
      "name         : lzo\ndriver       : lzo-scomp\ntype         : scomp\n\n"
      "name         : crc32c\ndriver       : crc32c-lib\ntype         : shash\n\n"
      "name         : deflate\ntype         : acomp\n\n"
      "name         : lzo\ndriver       : lzo-generic\ntype         : compression\n\n");
  EXPECT_EQ(c, (std::vector<std::string>{"deflate", "lzo"}));
}

TEST(Mounts, DecodesEscapes) {
  const auto m = disk::parse_mounts("/dev/vda / ext4 rw 0 0\n/dev/vdb1 /mnt/my\\040disk xfs rw 0 0\n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[1].target, "/mnt/my disk");
  EXPECT_TRUE(disk::is_mounted(m, "/dev/vdb1"));
  EXPECT_FALSE(disk::is_mounted(m, "/dev/vdb2"));
}

TEST(Meminfo, MemTotalInBytes) {
  auto r = parse_mem_total("MemFree: 1 kB\nMemTotal:       16384000 kB\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 16384000ull * 1024);
  EXPECT_FALSE(parse_mem_total("MemFree: 1 kB\n"));
}
