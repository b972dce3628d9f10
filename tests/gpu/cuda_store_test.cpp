// CudaStore on a real GPU (label gpu). Every test that needs a device skips
// with the store's own reason ("no NVIDIA driver", "no CUDA device") where
// there is none; NoDeviceIsAPlainError runs everywhere.
#include "backends/vram/cuda_store.hpp"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace tierswap::vram {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;

struct Made {
  std::unique_ptr<BlockStore> store;
  std::string report;
  std::string skip;  // non-empty: no device here
};

Made make(std::uint64_t size, const CudaStoreTuning& tuning = {}) {
  Made m;
  auto r = make_cuda_store(CudaStoreOptions{size, ""}, tuning, m.report);
  if (!r) {
    if (r.error().code == ENODEV)
      m.skip = r.error().message;
    else
      m.report = r.error().describe();
    return m;
  }
  m.store = std::move(*r);
  return m;
}

#define MAKE_OR_SKIP(var, ...)                     \
  Made var = make(__VA_ARGS__);                    \
  if (!var.skip.empty()) GTEST_SKIP() << var.skip; \
  ASSERT_TRUE(var.store) << var.report

// Buffers from the store, freed with it.
struct Buffers {
  BlockStore& s;
  std::vector<std::pair<std::byte*, std::size_t>> all;
  std::byte* get(std::size_t n) {
    std::byte* p = s.allocate_buffer(n);
    if (p) all.emplace_back(p, n);
    return p;
  }
  ~Buffers() {
    for (auto& [p, n] : all) s.free_buffer(p, n);
  }
};

void fill_random(std::byte* p, std::size_t n, std::mt19937_64& rng) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<std::byte>(rng());
}

std::uint64_t fnv(const std::byte* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<std::uint8_t>(p[i])) * 1099511628211ull;
  return h;
}

// Reads the whole store back in 1 MiB pieces and compares with ref.
void expect_matches(BlockStore& s, const std::vector<std::byte>& ref, std::byte* buf) {
  for (std::uint64_t off = 0; off < ref.size(); off += kMiB) {
    const std::size_t n = std::min<std::uint64_t>(kMiB, ref.size() - off);
    std::memset(buf, 0x5a, n);
    ASSERT_EQ(s.read(off, std::span<std::byte>(buf, n)), 0);
    if (std::memcmp(buf, ref.data() + off, n) != 0) {
      std::size_t i = 0;
      while (buf[i] == ref[off + i]) ++i;
      FAIL() << "store differs from reference at byte " << off + i << " (checksum " << fnv(buf, n) << " vs "
             << fnv(ref.data() + off, n) << ")";
    }
  }
}

TEST(CudaStore, NoDeviceIsAPlainError) {
  std::string report;
  auto r = make_cuda_store(CudaStoreOptions{64 * kMiB, ""}, report);
  if (!r) {
    EXPECT_EQ(r.error().code, ENODEV) << r.error().message;
    const std::string& m = r.error().message;
    EXPECT_TRUE(m.find("no NVIDIA driver") != std::string::npos ||
                m.find("no CUDA device") != std::string::npos ||
                m.find("driver supports CUDA") != std::string::npos)
        << m;
    EXPECT_FALSE(report.empty());
    return;
  }
  // A GPU is here: bad device names are plain errors instead.
  auto bad = make_cuda_store(CudaStoreOptions{64 * kMiB, "99"}, report);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ENODEV);
  EXPECT_NE(bad.error().message.find("only"), std::string::npos) << bad.error().message;
  auto uuid = make_cuda_store(CudaStoreOptions{64 * kMiB, "GPU-ffffffff-no-such"}, report);
  ASSERT_FALSE(uuid);
  EXPECT_NE(uuid.error().message.find("no GPU has this UUID"), std::string::npos);
  auto junk = make_cuda_store(CudaStoreOptions{64 * kMiB, "first"}, report);
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code, EINVAL);
}

TEST(CudaStore, CreatesWhatItWasAskedAndSaysSo) {
  MAKE_OR_SKIP(m, 64 * kMiB + 1000);
  BlockStore& s = *m.store;
  EXPECT_EQ(s.size(), 64 * kMiB + 512);  // rounded down to a block
  EXPECT_STREQ(s.name(), "cuda");
  EXPECT_EQ(s.block_size(), 512u);
  EXPECT_FALSE(s.prefers_batching());  // measured: inline submits beat the server's batcher
  EXPECT_FALSE(s.failed());
  EXPECT_NE(m.report.find("as asked"), std::string::npos) << m.report;
  EXPECT_NE(m.report.find("GPU 0"), std::string::npos) << m.report;
  // A fresh store reads as zeros.
  Buffers b{s};
  std::byte* buf = b.get(kMiB);
  ASSERT_NE(buf, nullptr);
  std::memset(buf, 0x77, kMiB);
  ASSERT_EQ(s.read(s.size() - kMiB, std::span<std::byte>(buf, kMiB)), 0);
  EXPECT_TRUE(std::all_of(buf, buf + kMiB, [](std::byte c) { return c == std::byte{0}; }));
}

struct Variant {
  const char* name;
  CudaStoreTuning tuning;
};

Variant variants[] = {
    {"defaults", {}},
    {"no_poller", {.poller = false}},
    {"copies", {.copy_min_bytes = 4096, .zero_kernel_min_bytes = 4096}},
    {"one_lane_big_poller", {.lanes = 1, .poller_max_bytes = 1 << 20}},
};

void PrintTo(const Variant& v, std::ostream* os) {
  *os << v.name;
}

class CudaStoreRandom : public ::testing::TestWithParam<Variant> {};

// Random batches of every op against a host reference; fresh random data
// each write, read buffers poisoned, the whole store compared at the end.
TEST_P(CudaStoreRandom, BatchesMatchAHostReference) {
  constexpr std::uint64_t kSize = 96 * kMiB;
  MAKE_OR_SKIP(m, kSize, GetParam().tuning);
  BlockStore& s = *m.store;
  ASSERT_EQ(s.size(), kSize);
  std::vector<std::byte> ref(kSize);
  Buffers b{s};
  constexpr std::size_t kBuf = 256 * 1024;
  constexpr int kSlots = 128;
  std::vector<std::byte*> slots;
  for (int i = 0; i < kSlots; ++i) {
    slots.push_back(b.get(kBuf));
    ASSERT_NE(slots.back(), nullptr);
  }
  std::byte* whole = b.get(kMiB);
  ASSERT_NE(whole, nullptr);

  std::mt19937_64 rng(std::random_device{}());
  std::vector<IoRequest> batch;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> used;
  for (int round = 0; round < 300; ++round) {
    batch.clear();
    used.clear();
    // Mostly small batches of pages, sometimes large ones and large requests.
    const int want = round % 5 == 0 ? 1 + static_cast<int>(rng() % kSlots) : 1 + static_cast<int>(rng() % 16);
    for (int i = 0; i < want; ++i) {
      IoRequest r;
      const unsigned pick = rng() % 100;
      r.op = pick < 40   ? Op::write
             : pick < 85 ? Op::read
             : pick < 92 ? Op::zero
             : pick < 97 ? Op::trim
                         : Op::flush;
      const std::uint32_t blocks = rng() % 4 == 0 ? 1 + rng() % (kBuf / 512) : 8;  // pages mostly
      r.length = r.op == Op::flush ? 0 : blocks * 512;
      r.offset = r.op == Op::flush ? 0 : (rng() % ((kSize - r.length) / 512 + 1)) * 512;
      // No two requests of one batch overlap (the NBD client's promise).
      bool overlaps = false;
      for (auto [o, l] : used) overlaps |= r.offset < o + l && o < r.offset + r.length;
      if (overlaps) continue;
      used.emplace_back(r.offset, r.length);
      // Sometimes an unaligned pointer inside the buffer.
      const std::size_t shift = rng() % 8 == 0 ? 1 + rng() % 15 : 0;
      if (r.length + shift > kBuf) continue;
      r.data = slots[batch.size()] + shift;
      if (r.op == Op::write) fill_random(r.data, r.length, rng);
      if (r.op == Op::read) fill_random(r.data, r.length, rng);  // poison
      r.error = -1;
      batch.push_back(r);
    }
    s.submit(batch);
    for (const IoRequest& r : batch) {
      ASSERT_EQ(r.error, 0) << "round " << round;
      if (r.op == Op::read) {
        ASSERT_EQ(std::memcmp(r.data, ref.data() + r.offset, r.length), 0)
            << "round " << round << " read at " << r.offset << " length " << r.length;
      }
    }
    for (const IoRequest& r : batch) {
      if (r.op == Op::write) std::memcpy(ref.data() + r.offset, r.data, r.length);
      if (r.op == Op::zero || r.op == Op::trim) std::memset(ref.data() + r.offset, 0, r.length);
    }
  }
  EXPECT_FALSE(s.failed());
  expect_matches(s, ref, whole);
  const CudaStoreCounters c = cuda_store_counters(s);
  if (GetParam().tuning.poller) {
    EXPECT_GT(c.poller_batches, 0u);
  } else {
    EXPECT_EQ(c.poller_batches, 0u);
  }
  EXPECT_GT(c.kernel_launches, 0u);
  RecordProperty("poller_batches", std::to_string(c.poller_batches));
  RecordProperty("kernel_launches", std::to_string(c.kernel_launches));
}

INSTANTIATE_TEST_SUITE_P(Paths, CudaStoreRandom, ::testing::ValuesIn(variants),
                         [](const auto& info) { return std::string(info.param.name); });

// Sizes at the edges of each path: one block, segment and poller limits, the
// copy threshold, the protocol's 32 MiB maximum, the last block of the store,
// unaligned and pageable host pointers.
TEST(CudaStore, EdgeSizesAndPointers) {
  constexpr std::uint64_t kSize = 80 * kMiB;
  MAKE_OR_SKIP(m, kSize);
  BlockStore& s = *m.store;
  std::vector<std::byte> ref(kSize);
  Buffers b{s};
  std::byte* buf = b.get(32 * kMiB + 64);
  std::byte* whole = b.get(kMiB);
  ASSERT_TRUE(buf && whole);
  std::vector<std::byte> pageable(32 * kMiB + 64);
  std::mt19937_64 rng(std::random_device{}());
  const std::uint32_t lengths[] = {512,
                                   1536,
                                   4096,
                                   4608,
                                   16384,
                                   16896,
                                   65536,
                                   66048,
                                   512 * 1024 - 512,
                                   512 * 1024,
                                   512 * 1024 + 512,
                                   4 * kMiB,
                                   32 * kMiB};
  int k = 0;
  for (std::uint32_t len : lengths) {
    for (std::uint64_t off : {std::uint64_t{0}, kSize - len, (kSize / 2 - len / 2) / 512 * 512}) {
      for (int where = 0; where < 3; ++where) {
        std::byte* p = where == 0 ? buf : where == 1 ? buf + 8 : pageable.data() + 3;
        fill_random(p, len, rng);
        ASSERT_EQ(s.write(off, std::span<const std::byte>(p, len)), 0) << len << "@" << off;
        std::memcpy(ref.data() + off, p, len);
        std::byte* q = (k++ % 2 == 0) ? buf + 16 : pageable.data() + 1;
        fill_random(q, len, rng);
        ASSERT_EQ(s.read(off, std::span<std::byte>(q, len)), 0);
        ASSERT_EQ(std::memcmp(q, ref.data() + off, len), 0) << len << "@" << off << " w" << where;
      }
    }
  }
  // Zero and trim across path thresholds; zero length is a no-op.
  ASSERT_EQ(s.zero(512, 3 * kMiB + 512), 0);
  std::memset(ref.data() + 512, 0, 3 * kMiB + 512);
  ASSERT_EQ(s.trim(kSize - 4096, 4096), 0);
  std::memset(ref.data() + kSize - 4096, 0, 4096);
  ASSERT_EQ(s.zero(kSize - 512, 512), 0);
  std::memset(ref.data() + kSize - 512, 0, 512);
  ASSERT_EQ(s.read(0, std::span<std::byte>(buf, 0)), 0);
  ASSERT_EQ(s.flush(), 0);
  expect_matches(s, ref, whole);
  const CudaStoreCounters c = cuda_store_counters(s);
  EXPECT_GT(c.pageable, 0u);
  EXPECT_GT(c.copies, 0u);
  EXPECT_GT(c.poller_batches, 0u);
}

// One batch holding every op; then the effects are read back.
TEST(CudaStore, BatchMixingAllOps) {
  MAKE_OR_SKIP(m, 16 * kMiB);
  BlockStore& s = *m.store;
  Buffers b{s};
  std::byte* w = b.get(1 << 20);
  std::byte* r = b.get(1 << 20);
  std::byte* chk = b.get(1 << 20);
  ASSERT_TRUE(w && r && chk);
  std::mt19937_64 rng(42 + std::random_device{}());
  // Preload [0, 4 MiB) with data so that zero and trim have something to clear.
  fill_random(chk, 1 << 20, rng);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(s.write(i * kMiB, std::span<const std::byte>(chk, 1 << 20)), 0);
  }
  std::vector<std::byte> pre(chk, chk + (1 << 20));
  fill_random(w, 1 << 20, rng);
  fill_random(r, 1 << 20, rng);
  IoRequest batch[] = {
      {Op::write, 8 * kMiB, 65536, w, -1},
      {Op::read, 0, 4096, r, -1},
      {Op::zero, kMiB, 8192, nullptr, -1},
      {Op::trim, 2 * kMiB, 4096, nullptr, -1},
      {Op::flush, 0, 0, nullptr, -1},
      {Op::write, 9 * kMiB, 512 * 1024, w + 65536, -1},
      {Op::read, 3 * kMiB, 256 * 1024, r + 4096, -1},
      {Op::zero, 4 * kMiB, 2 * 1024 * 1024, nullptr, -1},
  };
  s.submit(batch);
  for (const IoRequest& q : batch) ASSERT_EQ(q.error, 0);
  EXPECT_EQ(std::memcmp(r, pre.data(), 4096), 0);
  EXPECT_EQ(std::memcmp(r + 4096, pre.data(), 256 * 1024), 0);
  auto read_is = [&](std::uint64_t off, std::uint32_t len, const std::byte* want) {
    std::memset(chk, 0xee, len);
    EXPECT_EQ(s.read(off, std::span<std::byte>(chk, len)), 0);
    if (want) return std::memcmp(chk, want, len) == 0;
    return std::all_of(chk, chk + len, [](std::byte c) { return c == std::byte{0}; });
  };
  EXPECT_TRUE(read_is(8 * kMiB, 65536, w));
  EXPECT_TRUE(read_is(9 * kMiB, 512 * 1024, w + 65536));
  EXPECT_TRUE(read_is(kMiB, 8192, nullptr));
  EXPECT_TRUE(read_is(kMiB + 8192, 4096, pre.data() + 8192));  // zero stopped where asked
  EXPECT_TRUE(read_is(2 * kMiB, 4096, nullptr));
  EXPECT_TRUE(read_is(4 * kMiB, 1 << 20, nullptr));
}

// Threads on disjoint regions at once: lanes and the poller shared safely.
TEST(CudaStore, ConcurrentSubmitters) {
  constexpr int kThreads = 8;
  constexpr std::uint64_t kRegion = 8 * kMiB;
  MAKE_OR_SKIP(m, kThreads * kRegion);
  BlockStore& s = *m.store;
  Buffers b{s};
  std::vector<std::byte*> bufs;
  for (int t = 0; t < kThreads; ++t) bufs.push_back(b.get(32 * 8192));
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t * 7919 + std::random_device{}());
      std::vector<std::byte> ref(kRegion);
      std::byte* base = bufs[t];
      const std::uint64_t start = t * kRegion;
      for (int round = 0; round < 400; ++round) {
        const int n = 1 + rng() % 32;
        std::vector<IoRequest> batch;
        for (int i = 0; i < n; ++i) {
          // Page-sized slots at distinct page indices: no overlap in a batch.
          const std::uint64_t page = (rng() % (kRegion / 8192 / 32)) * 32 + i;
          IoRequest r{rng() % 2 ? Op::write : Op::read, start + page * 8192, 8192, base + i * 8192, -1};
          fill_random(r.data, r.length, rng);
          batch.push_back(r);
        }
        s.submit(batch);
        for (const IoRequest& r : batch) {
          if (r.error != 0) ++bad;
          const std::uint64_t lo = r.offset - start;
          if (r.op == Op::read && std::memcmp(r.data, ref.data() + lo, r.length) != 0) ++bad;
          if (r.op == Op::write) std::memcpy(ref.data() + lo, r.data, r.length);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_FALSE(s.failed());
}

// The poller leaves after its idle time and comes back for the next request;
// allocating buffers while it runs does not hang.
TEST(CudaStore, PollerExitsWhenIdleAndRestarts) {
  MAKE_OR_SKIP(m, 16 * kMiB, CudaStoreTuning{.poller_idle_us = 2000});
  BlockStore& s = *m.store;
  Buffers b{s};
  std::byte* p = b.get(4096);
  std::mt19937_64 rng(5);
  std::vector<std::byte> want(4096);
  for (int i = 0; i < 5; ++i) {
    fill_random(want.data(), 4096, rng);
    std::memcpy(p, want.data(), 4096);
    ASSERT_EQ(s.write(4096 * i, std::span<const std::byte>(p, 4096)), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(i % 2 ? 10 : 0));
    std::memset(p, 0, 4096);
    ASSERT_EQ(s.read(4096 * i, std::span<std::byte>(p, 4096)), 0);
    ASSERT_EQ(std::memcmp(p, want.data(), 4096), 0);
    std::byte* extra = b.get(8192);  // stops the poller, then allocates
    ASSERT_NE(extra, nullptr);
  }
  const CudaStoreCounters c = cuda_store_counters(s);
  EXPECT_GE(c.poller_starts, 3u);
  EXPECT_GE(c.poller_batches, 8u);  // a request may race an idle exit and launch instead
}

// Asking for more than the GPU has: the store takes less and says so; a
// second store on a full GPU fails with ENOMEM and says why.
TEST(CudaStore, BacksOffWhenTheGpuIsShort) {
  MAKE_OR_SKIP(probe, 16 * kMiB);
  std::size_t free_b = 0, total_b = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  probe.store.reset();
  const std::uint64_t ask = total_b / 2 * 3;
  MAKE_OR_SKIP(m, ask);
  BlockStore& s = *m.store;
  EXPECT_LT(s.size(), ask);
  EXPECT_GE(s.size(), ask / 8);
  EXPECT_NE(m.report.find("less than"), std::string::npos) << m.report;
  std::printf("report: %s\n", m.report.c_str());
  // The last page of a backed-off store works.
  Buffers b{s};
  std::byte* p = b.get(4096);
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x3c, 4096);
  ASSERT_EQ(s.write(s.size() - 4096, std::span<const std::byte>(p, 4096)), 0);
  std::memset(p, 0, 4096);
  ASSERT_EQ(s.read(s.size() - 4096, std::span<std::byte>(p, 4096)), 0);
  EXPECT_EQ(p[4095], std::byte{0x3c});

  std::string report;
  auto second = make_cuda_store(CudaStoreOptions{total_b, ""}, report);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ENOMEM);
  EXPECT_NE(second.error().message.find("cannot allocate"), std::string::npos) << second.error().message;
}

// A failed launch (not sticky): the batch gets EIO, the store stays failed,
// and a new store in the same process works.
TEST(CudaStore, LaunchFailureGivesEioAndFailed) {
  MAKE_OR_SKIP(m, 16 * kMiB);
  BlockStore& s = *m.store;
  Buffers b{s};
  std::byte* p = b.get(3 * 4096);
  ASSERT_EQ(s.write(0, std::span<const std::byte>(p, 4096)), 0);
  cuda_store_inject(s, CudaFault::bad_launch);
  IoRequest batch[] = {{Op::write, 0, 4096, p, -1},
                       {Op::read, 8192, 4096, p + 4096, -1},
                       {Op::zero, 65536, 4096, nullptr, -1}};
  s.submit(batch);
  for (const IoRequest& r : batch) EXPECT_EQ(r.error, EIO);
  EXPECT_TRUE(s.failed());
  EXPECT_EQ(s.read(0, std::span<std::byte>(p, 4096)), EIO);
  EXPECT_EQ(s.write(0, std::span<const std::byte>(p, 4096)), EIO);
  EXPECT_EQ(s.flush(), EIO);

  Made again = make(16 * kMiB);
  ASSERT_TRUE(again.store) << again.report;
  Buffers b2{*again.store};
  std::byte* q = b2.get(4096);
  std::memset(q, 0x11, 4096);
  EXPECT_EQ(again.store->write(0, std::span<const std::byte>(q, 4096)), 0);
  std::memset(q, 0, 4096);
  EXPECT_EQ(again.store->read(0, std::span<std::byte>(q, 4096)), 0);
  EXPECT_EQ(q[100], std::byte{0x11});
}

// A kernel that faults kills the CUDA context (sticky), so each case runs in
// a fresh process: the poller path and the launched path. write_first: the
// faulting segment is a write, whose store to the bad address is posted, so
// the poller goes on to signal done before the fault reaches the context;
// only the sticky-error check after done turns that into EIO.
void fault_in_child(bool poller, bool write_first = false) {
  Made m = make(16 * kMiB, CudaStoreTuning{.poller = poller});
  if (!m.store) std::exit(3);
  BlockStore& s = *m.store;
  std::byte* p = s.allocate_buffer(8192);
  if (s.write(0, std::span<const std::byte>(p, 4096)) != 0) std::exit(4);
  cuda_store_inject(s, CudaFault::bad_address);
  IoRequest batch[] = {{Op::read, 0, 4096, p, -1}, {Op::write, 4096, 4096, p + 4096, -1}};
  if (write_first) std::swap(batch[0], batch[1]);
  s.submit(batch);
  if (batch[0].error != EIO || batch[1].error != EIO) std::exit(5);
  if (!s.failed()) std::exit(6);
  if (s.read(0, std::span<std::byte>(p, 4096)) != EIO) std::exit(7);
  const CudaStoreCounters c = cuda_store_counters(s);
  std::fprintf(stderr, "fault seen; poller_starts=%llu\n", static_cast<unsigned long long>(c.poller_starts));
  std::_Exit(0);  // the context is gone: skip destructors
}

TEST(CudaStoreDeathTest, KernelFaultGivesEioAndFailed) {
  { MAKE_OR_SKIP(probe, 16 * kMiB); }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(fault_in_child(false), ::testing::ExitedWithCode(0), "fault seen");
  EXPECT_EXIT(fault_in_child(true), ::testing::ExitedWithCode(0), "fault seen; poller_starts=1");
  EXPECT_EXIT(fault_in_child(true, true), ::testing::ExitedWithCode(0), "fault seen; poller_starts=1");
}

}  // namespace
}  // namespace tierswap::vram
