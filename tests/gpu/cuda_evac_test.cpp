// Evacuation on CudaStore (label gpu): the export in VMM chunks, every chunk
// moved to each spill store and back while threads do checksummed I/O
// through submit() with pinned buffers, and the VRAM really given back
// (cudaMemGetInfo) and taken again. A watchdog fails (aborts) a test that
// does not finish in time, with the chunk map and the job's progress,
// instead of letting it hang.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "backends/vram/cuda_store.hpp"
#include "backends/vram/migrating_store.hpp"
#include "tests/support/watchdog.hpp"

namespace tierswap::vram {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t kSize = 512 * kMiB;
constexpr std::uint64_t kChunk = 64 * kMiB;

std::uint64_t free_vram() {
  std::size_t f = 0, t = 0;
  cudaMemGetInfo(&f, &t);
  return f;
}

void fill(std::byte* out, std::uint64_t p, std::uint64_t g) {
  if (g == 0) {
    std::memset(out, 0, 4096);
    return;
  }
  std::uint64_t x = (p + 1) * 0x9E3779B97F4A7C15ULL ^ g * 0xBF58476D1CE4E5B9ULL;
  for (unsigned i = 0; i < 4096; i += 8) {
    if (i < 2048) {
      x ^= x >> 31;
      x *= 0xD6E8FEB86659FD93ULL;
    }
    std::memcpy(out + i, &x, 8);
  }
}

void evacuate_cuda(const std::string& spill_spec) {
  std::string report;
  auto made = make_cuda_store(CudaStoreOptions{kSize, "", kChunk}, report);
  if (!made && made.error().code == ENODEV) GTEST_SKIP() << made.error().message;
  ASSERT_TRUE(made) << made.error().describe();
  ChunkedStore& cuda = **made;
  ASSERT_NE(report.find("chunks of"), std::string::npos) << "no VMM here: " << report;
  ASSERT_EQ(cuda.chunk_count(), kSize / kChunk);
  auto spill = make_spill(spill_spec, cuda.size());
  ASSERT_TRUE(spill) << spill.error().describe();
  MoverOptions mo;
  mo.slice_bytes = 4 * kMiB;
  mo.workers = 4;
  MigratingStore m(cuda, std::move(*spill), mo);
  tierswap::testing::Watchdog dog("evacuating CudaStore to " + spill_spec, std::chrono::seconds(120), [&] {
    std::string map;
    for (ChunkState c : m.states()) map += state_letter(c);
    const MoveProgress p = m.progress();
    return map + " job " + p.job + (p.running ? " running " : " ended ") + std::to_string(p.chunks_done) +
           "/" + std::to_string(p.chunks_total) + " chunks, " + std::to_string(p.bytes_moved) + " bytes";
  });

  constexpr unsigned kThreads = 4;
  constexpr unsigned kDepth = 16;
  const std::uint64_t pages = kSize / 4096;
  std::vector<std::uint64_t> gen(pages, 0);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> errors{0}, stale{0}, ops{0};
  auto worker = [&](unsigned t) {
    std::byte* buf = m.allocate_buffer(kDepth * 4096);
    ASSERT_NE(buf, nullptr);
    std::vector<std::byte> want(4096);
    std::mt19937_64 rng(t + 1);
    while (!stop) {
      // A batch of distinct pages of this thread, all writes or all reads.
      IoRequest batch[kDepth];
      std::uint64_t pg[kDepth];
      const bool write = rng() % 2 == 0;
      unsigned n = 0;
      while (n < kDepth) {
        std::uint64_t p = rng() % pages;
        p = p - p % kThreads + t;
        if (p >= pages || std::find(pg, pg + n, p) != pg + n) continue;
        pg[n] = p;
        if (write) fill(buf + n * 4096, p, gen[p] + 1);
        batch[n] = {write ? Op::write : Op::read, p * 4096, 4096, buf + n * 4096, 0};
        ++n;
      }
      m.submit(std::span<IoRequest>(batch, n));
      for (unsigned k = 0; k < n; ++k) {
        if (batch[k].error != 0) {
          errors++;
          continue;
        }
        if (write) {
          ++gen[pg[k]];
        } else {
          fill(want.data(), pg[k], gen[pg[k]]);
          if (std::memcmp(buf + k * 4096, want.data(), 4096) != 0) stale++;
        }
      }
      ops += n;
    }
    m.free_buffer(buf, kDepth * 4096);
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  while (ops < 10000) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  for (int round = 0; round < 2; ++round) {
    const std::uint64_t before = free_vram();
    ASSERT_TRUE(m.evacuate());
    auto p = m.wait();
    EXPECT_TRUE(p.error.empty()) << p.error;
    EXPECT_EQ(p.chunks_done, cuda.chunk_count());
    EXPECT_EQ(cuda.resident_bytes(), 0U);
    EXPECT_GE(free_vram(), before + kSize * 9 / 10) << "the VRAM was not given back";
    std::printf("evacuate to %s: %.2f GB/s\n", spill_spec.c_str(),
                static_cast<double>(p.bytes_moved) / p.seconds / 1e9);
    ASSERT_TRUE(m.promote());
    p = m.wait();
    EXPECT_TRUE(p.error.empty()) << p.error;
    EXPECT_EQ(cuda.resident_bytes(), kSize);
    std::printf("promote from %s: %.2f GB/s\n", spill_spec.c_str(),
                static_cast<double>(p.bytes_moved) / p.seconds / 1e9);
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0U);
  EXPECT_EQ(stale.load(), 0U);
  EXPECT_FALSE(cuda.failed());
  // Every page as last written, from the GPU itself.
  std::byte* buf = cuda.allocate_buffer(4096);
  std::vector<std::byte> want(4096);
  for (std::uint64_t p = 0; p < pages; p += 7) {
    ASSERT_EQ(cuda.read(p * 4096, {buf, 4096}), 0);
    fill(want.data(), p, gen[p]);
    ASSERT_EQ(std::memcmp(buf, want.data(), 4096), 0) << "page " << p;
  }
  cuda.free_buffer(buf, 4096);
}

TEST(CudaEvac, EveryChunkToLz4AndBack) {
  evacuate_cuda("lz4");
}

TEST(CudaEvac, EveryChunkToAFileAndBack) {
  char t[] = "/tmp/tsgpuevac.XXXXXX";
  const std::string dir = ::mkdtemp(t);
  evacuate_cuda("file:" + dir + "/spill");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tierswap::vram
