// The spill stores on their own: lz4 (pages, partial pages, zero pages, the
// ratio, discard) and the file (created only where nothing is, never through
// a link, unlinked at once, preallocated).
#include "backends/vram/spill_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backends/vram/latency_histogram.hpp"

namespace tierswap::vram {
namespace {

constexpr std::uint64_t kSize = 1 << 20;

TEST(Lz4Spill, PagesComeBackAsWritten) {
  auto s = make_lz4_spill(kSize);
  ASSERT_TRUE(s);
  std::vector<std::byte> w(kSize), r(kSize);
  std::mt19937_64 rng(1);
  for (std::size_t i = 0; i < w.size(); i += 8) {
    // Pages alternate: random (incompressible), text-like, zeros.
    const std::size_t page = i / 4096;
    std::uint64_t v = page % 3 == 0 ? rng() : page % 3 == 1 ? 0x6f6c6c6568ULL + page : 0;
    std::memcpy(w.data() + i, &v, 8);
  }
  ASSERT_EQ((*s)->write(0, w), 0);
  ASSERT_EQ((*s)->read(0, r), 0);
  EXPECT_EQ(w, r);
  // Zero pages hold nothing; the compressible ones shrink.
  EXPECT_EQ((*s)->stored_bytes(),
            2 * (kSize / 4096 / 3 + 1) * 4096 - 4096 * ((kSize / 4096) % 3 == 1 ? 1 : 0));
  EXPECT_LT((*s)->footprint_bytes(), (*s)->stored_bytes());
  EXPECT_GT((*s)->ratio(), 1.2);
}

TEST(Lz4Spill, PartialPagesAndZero) {
  auto s = make_lz4_spill(kSize);
  ASSERT_TRUE(s);
  std::vector<std::byte> page(4096, std::byte{0x5a}), sec(512, std::byte{0x11}), got(4096);
  ASSERT_EQ((*s)->write(8192, page), 0);
  ASSERT_EQ((*s)->write(8192 + 1024, sec), 0);
  std::memset(page.data() + 1024, 0x11, 512);
  ASSERT_EQ((*s)->read(8192, got), 0);
  EXPECT_EQ(got, page);
  ASSERT_EQ((*s)->zero(8192 + 512, 512), 0);
  std::memset(page.data() + 512, 0, 512);
  ASSERT_EQ((*s)->read(8192, got), 0);
  EXPECT_EQ(got, page);
  // A read that starts inside one page and ends inside the next.
  std::vector<std::byte> two(4096);
  ASSERT_EQ((*s)->read(8192 + 2048, two), 0);
  EXPECT_EQ(std::memcmp(two.data(), page.data() + 2048, 2048), 0);
  ASSERT_EQ((*s)->zero(8192, 4096), 0);
  EXPECT_EQ((*s)->stored_bytes(), 0U);
  EXPECT_EQ((*s)->footprint_bytes(), 0U);
  EXPECT_DOUBLE_EQ((*s)->ratio(), 1.0);
}

TEST(Lz4Spill, DiscardFreesWhatARangeHeld) {
  auto s = make_lz4_spill(kSize);
  ASSERT_TRUE(s);
  std::vector<std::byte> w(65536, std::byte{0x42});
  ASSERT_EQ((*s)->write(0, w), 0);
  ASSERT_EQ((*s)->write(65536, w), 0);
  const auto before = (*s)->footprint_bytes();
  (*s)->discard(0, 65536);
  EXPECT_EQ((*s)->stored_bytes(), 65536U);
  EXPECT_EQ((*s)->footprint_bytes(), before / 2);
}

// The block layer may have a read and a write of one page in flight at once
// (two connections): the read sees the old or the new page, and the store
// never fails over it (a torn compressed page would make it EIO for good).
TEST(Lz4Spill, ARaceOnOnePageNeverTearsIt) {
  auto s = make_lz4_spill(kSize);
  ASSERT_TRUE(s);
  std::vector<std::byte> a(4096), b(4096);
  std::mt19937_64 rng(3);
  for (std::size_t i = 0; i < 4096; i += 8) {
    const std::uint64_t v = rng();  // a: incompressible (kept raw)
    std::memcpy(a.data() + i, &v, 8);
  }
  for (std::size_t i = 0; i < 4096; ++i) b[i] = std::byte(i % 7);  // b: compresses well
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) (void)(*s)->write(0, i % 2 ? a : b);
  });
  std::vector<std::byte> got(4096);
  int odd = 0;
  for (int i = 0; i < 20000; ++i) {
    ASSERT_EQ((*s)->read(0, got), 0);
    odd += got != a && got != b && got != std::vector<std::byte>(4096);
  }
  stop = true;
  writer.join();
  EXPECT_EQ(odd, 0);
  EXPECT_FALSE((*s)->failed());
}

// The bytes the lz4 store has mapped for compressed pages (its describe()).
std::uint64_t mapped(const SpillStore& s) {
  const std::string d = s.describe();
  const auto end = d.find(" bytes mapped");
  if (end == std::string::npos) return ~0ULL;
  const auto begin = d.rfind(' ', end - 1) + 1;
  return std::stoull(d.substr(begin, end - begin));
}

// Compressed pages live in per-64-MiB arenas: slots are reused by the next
// page of their size, a segment's memory goes back when it holds no page,
// and the prefault pool of an evacuation (expect) is given back when the
// move ends.
TEST(Lz4Spill, ASegmentsMemoryIsReusedAndGivenBackWhenItIsEmpty) {
  constexpr std::uint64_t kSeg = 64ULL << 20;
  auto s = make_lz4_spill(4 * kSeg);
  ASSERT_TRUE(s);
  EXPECT_EQ(mapped(**s), 0U) << (*s)->describe();
  (*s)->expect(2 * kSeg);  // an evacuation of two segments starts
  std::mt19937_64 rng(5);
  auto page = [&](unsigned kind) {  // 0: incompressible, 1: half, 2: text-like
    std::vector<std::byte> p(4096);
    for (std::size_t i = 0; i < 4096; i += 8) {
      const std::uint64_t v = kind == 0   ? rng()
                              : kind == 1 ? (i < 2048 ? rng() : 7)
                                          : 0x6f6c6c6568ULL + i % 64;
      std::memcpy(p.data() + i, &v, 8);
    }
    return p;
  };
  std::map<std::uint64_t, std::vector<std::byte>> want;
  for (std::uint64_t off = 0; off < 2 * kSeg; off += 64 * 4096) {
    auto p = page(static_cast<unsigned>(off / 4096 % 3));
    ASSERT_EQ((*s)->write(off, p), 0);
    want[off] = std::move(p);
  }
  (*s)->expect(0);
  const std::uint64_t first = mapped(**s);
  EXPECT_GT(first, 0U);
  EXPECT_LT(first, 2 * kSeg) << "the arenas map far more than the pages need";
  // Rewrites of other sizes reuse freed slots: a few rounds map little more.
  for (int round = 0; round < 4; ++round)
    for (auto& [off, p] : want) {
      p = page(static_cast<unsigned>((off / 4096 + round + 1) % 3));
      ASSERT_EQ((*s)->write(off, p), 0);
    }
  EXPECT_LE(mapped(**s), first + (4U << 20)) << (*s)->describe();
  std::vector<std::byte> got(4096);
  for (const auto& [off, p] : want) {
    ASSERT_EQ((*s)->read(off, got), 0);
    ASSERT_EQ(got, p) << "page at " << off;
  }
  // The first segment's chunk goes back to VRAM: its memory is unmapped.
  const std::uint64_t both = mapped(**s);
  (*s)->discard(0, kSeg);
  EXPECT_LT(mapped(**s), both);
  EXPECT_GT(mapped(**s), 0U);
  (*s)->discard(kSeg, kSeg);
  EXPECT_EQ(mapped(**s), 0U) << (*s)->describe();
  EXPECT_EQ((*s)->stored_bytes(), 0U);
}

TEST(Lz4Spill, RefusesABadSize) {
  EXPECT_FALSE(make_lz4_spill(0));
  EXPECT_FALSE(make_lz4_spill(1000));
}

struct Dir {
  std::string path;
  Dir() {
    char t[] = "/tmp/tsspill.XXXXXX";
    path = ::mkdtemp(t);
  }
  ~Dir() { std::filesystem::remove_all(path); }
};

TEST(FileSpill, CreatedPreallocatedAndUnlinked) {
  Dir d;
  auto s = make_file_spill(d.path + "/spill-fast", kSize);
  if (!s && s.error().code == EPERM)
    GTEST_SKIP() << "safe-path rules refuse /tmp here: " << s.error().message;
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_FALSE(std::filesystem::exists(d.path + "/spill-fast"));  // unlinked at once
  EXPECT_NE((*s)->describe().find(d.path + "/spill-fast"), std::string::npos);
  std::vector<std::byte> w(8192, std::byte{0x33}), r(8192);
  ASSERT_EQ((*s)->write(4096, w), 0);  // aligned: the O_DIRECT descriptor where there is one
  ASSERT_EQ((*s)->read(4096, r), 0);
  EXPECT_EQ(w, r);
  std::vector<std::byte> sec(512, std::byte{0x44}), got(4096);
  ASSERT_EQ((*s)->write(4096 + 512, sec), 0);  // unaligned: buffered
  ASSERT_EQ((*s)->read(4096, got), 0);         // aligned read sees it
  EXPECT_EQ(got[512], std::byte{0x44});
  EXPECT_EQ(got[0], std::byte{0x33});
  ASSERT_EQ((*s)->zero(4096, 4096), 0);
  ASSERT_EQ((*s)->read(4096, got), 0);
  EXPECT_EQ(got, std::vector<std::byte>(4096));
}

TEST(FileSpill, RefusesAnExistingFile) {
  Dir d;
  const std::string path = d.path + "/spill";
  std::ofstream(path) << "somebody's data";
  auto s = make_file_spill(path, kSize);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, EEXIST);
  EXPECT_NE(s.error().message.find(path), std::string::npos);
  std::ifstream f(path);
  std::string text;
  std::getline(f, text);
  EXPECT_EQ(text, "somebody's data");  // left as it was
}

TEST(FileSpill, RefusesALinkEvenToNothing) {
  Dir d;
  const std::string path = d.path + "/spill";
  std::filesystem::create_symlink(d.path + "/target", path);
  auto s = make_file_spill(path, kSize);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, EEXIST);
  EXPECT_FALSE(std::filesystem::exists(d.path + "/target"));  // not created through the link
}

TEST(FileSpill, RefusesADirectoryOthersCanWrite) {
  Dir d;
  ASSERT_EQ(::chmod(d.path.c_str(), 0777), 0);
  auto s = make_file_spill(d.path + "/spill", kSize);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, EPERM) << s.error().describe();
}

TEST(FileSpill, RefusesARelativePathAndAMissingDirectory) {
  auto s = make_file_spill("spill", kSize);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, EINVAL);
  Dir d;
  s = make_file_spill(d.path + "/no/such/spill", kSize);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("does not exist"), std::string::npos) << s.error().message;
}

TEST(MakeSpill, NamesTheBadSpec) {
  auto s = make_spill("zstd", kSize);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("zstd"), std::string::npos);
}

TEST(LatencyHistogram, BucketsAreTheNonEmptyOnesAscending) {
  LatencyHistogram h;
  EXPECT_TRUE(h.buckets().empty());
  for (int i = 0; i < 5; ++i) h.record(10000);
  h.record(2000000, 3);
  const auto b = h.buckets();
  ASSERT_EQ(b.size(), 2U);
  EXPECT_GE(b[0].first, 10000U);
  EXPECT_EQ(b[0].second, 5U);
  EXPECT_GE(b[1].first, 2000000U);
  EXPECT_EQ(b[1].second, 3U);
  EXPECT_EQ(b[0].second + b[1].second, h.total());
}

TEST(LatencyHistogram, PercentilesWithinABucket) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0U);
  for (int i = 0; i < 98; ++i) h.record(10000);  // 10 µs
  h.record(2000000);                             // 2 ms
  h.record(3000000);
  const auto p50 = h.percentile(0.5), p99 = h.percentile(0.99);
  EXPECT_GE(p50, 10000U);
  EXPECT_LE(p50, 12500U);
  EXPECT_GE(p99, 2000000U);
  EXPECT_LE(p99, 2500000U);
  for (std::uint64_t v : {0ULL, 3ULL, 4ULL, 7ULL, 1000ULL, 123456789ULL, ~0ULL}) {
    const unsigned b = LatencyHistogram::bucket(v);
    ASSERT_LT(b, LatencyHistogram::kBuckets);
    EXPECT_GE(LatencyHistogram::upper(b), v);
    if (b > 0) {
      EXPECT_LT(LatencyHistogram::upper(b - 1), v);
    }
  }
}

}  // namespace
}  // namespace tierswap::vram
