// MigratingStore's per-chunk state machine over a chunked HostStore and the
// spill stores: every chunk out and back while threads do checksummed I/O;
// a write landing below and above a move's watermark; writes landing in a
// slice while it is copied without the lock; batches that touch chunks in
// any order while movers wait; a spill that fails mid-move; cancel;
// requests that span chunks.
#include "backends/vram/migrating_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "backends/vram/host_store.hpp"
#include "tests/support/watchdog.hpp"

namespace tierswap::vram {
namespace {

constexpr std::uint64_t kChunk = 64 * 1024;
constexpr std::uint64_t kSize = 16 * kChunk - 8192;  // the last chunk shorter

std::unique_ptr<HostStore> host(std::uint64_t size = kSize, std::uint64_t chunk = kChunk) {
  HostStoreOptions o;
  o.size = size;
  o.chunk_bytes = chunk;
  o.lock = false;
  auto s = HostStore::create(o);
  EXPECT_TRUE(s) << s.error().describe();
  return std::move(*s);
}

// Page p at generation g: half pseudo-random, half repeated (compressible).
void fill(std::byte* out, std::uint64_t p, std::uint64_t g, std::uint32_t len = 4096) {
  std::uint64_t x = (p * 0x9E3779B97F4A7C15ULL) ^ (g * 0xBF58476D1CE4E5B9ULL) ^ 0x94D049BB133111EBULL;
  for (std::uint32_t i = 0; i < len; i += 8) {
    if (i < len / 2) {
      x ^= x >> 31;
      x *= 0xD6E8FEB86659FD93ULL;
      x ^= x >> 32;
    }
    std::memcpy(out + i, &x, 8);
  }
}

MoverOptions small_slices() {
  MoverOptions m;
  m.slice_bytes = 8192;
  m.workers = 2;
  return m;
}

TEST(HostStoreChunks, ReleaseGivesMemoryBackAndRestoreTakesIt) {
  auto h = host();
  EXPECT_EQ(h->chunk_count(), 16U);
  EXPECT_EQ(h->chunk_length(15), kChunk - 8192);
  const std::uint64_t full = h->resident_bytes();
  ASSERT_TRUE(h->release_chunk(3));
  EXPECT_FALSE(h->chunk_resident(3));
  EXPECT_EQ(h->resident_bytes(), full - kChunk);
  std::byte b[4096];
  EXPECT_EQ(h->read(3 * kChunk, b), EIO);  // a released chunk is never served
  ASSERT_TRUE(h->restore_chunk(3));
  EXPECT_EQ(h->resident_bytes(), full);
  EXPECT_EQ(h->read(3 * kChunk, b), 0);
}

TEST(HostStoreChunks, RequestsSpanChunks) {
  auto h = host();
  std::vector<std::byte> w(3 * kChunk), r(3 * kChunk);
  fill(w.data(), 1, 1, static_cast<std::uint32_t>(w.size()));
  ASSERT_EQ(h->write(kChunk - 4096, w), 0);
  ASSERT_EQ(h->read(kChunk - 4096, r), 0);
  EXPECT_EQ(w, r);
}

TEST(MigratingStore, EvacuateWithoutSpillSaysWhy) {
  auto h = host();
  MigratingStore m(*h, nullptr);
  auto r = m.evacuate();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no spill store configured"), std::string::npos) << r.error().message;
}

// Every chunk out and back, twice, with data checked at each stop.
void round_trip(std::unique_ptr<SpillStore> spill) {
  auto h = host();
  std::vector<std::byte> page(4096), got(4096);
  for (std::uint64_t p = 0; p < kSize / 4096; ++p) {
    fill(page.data(), p, 1);
    ASSERT_EQ(h->write(p * 4096, page), 0);
  }
  MigratingStore m(*h, std::move(spill), small_slices());
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(m.evacuate());
    auto p = m.wait();
    EXPECT_TRUE(p.error.empty()) << p.error;
    EXPECT_EQ(p.chunks_done, 16U);
    EXPECT_EQ(p.bytes_moved, kSize);
    for (ChunkState s : m.states()) EXPECT_EQ(s, ChunkState::spilled);
    EXPECT_EQ(h->resident_bytes(), 0U);
    for (std::uint64_t pg = 0; pg < kSize / 4096; ++pg) {
      fill(page.data(), pg, 1);
      ASSERT_EQ(m.read(pg * 4096, got), 0);
      ASSERT_EQ(page, got) << "page " << pg << " while spilled";
    }
    ASSERT_TRUE(m.promote());
    p = m.wait();
    EXPECT_TRUE(p.error.empty()) << p.error;
    EXPECT_EQ(p.chunks_done, 16U);
    for (ChunkState s : m.states()) EXPECT_EQ(s, ChunkState::resident);
    for (std::uint64_t pg = 0; pg < kSize / 4096; ++pg) {
      fill(page.data(), pg, 1);
      ASSERT_EQ(h->read(pg * 4096, got), 0);  // in the primary itself
      ASSERT_EQ(page, got) << "page " << pg << " after promote";
    }
  }
}

TEST(MigratingStore, RoundTripLz4) {
  auto s = make_lz4_spill(kSize);
  ASSERT_TRUE(s);
  round_trip(std::move(*s));
}

struct SpillDir {
  std::string path;
  SpillDir() {
    char t[] = "/tmp/tsevac.XXXXXX";
    path = ::mkdtemp(t);
  }
  ~SpillDir() { std::filesystem::remove_all(path); }
};

TEST(MigratingStore, RoundTripFile) {
  SpillDir d;
  auto s = make_file_spill(d.path + "/spill", kSize);
  if (!s && s.error().code == EPERM)
    GTEST_SKIP() << "safe-path rules refuse /tmp here: " << s.error().message;
  ASSERT_TRUE(s) << s.error().describe();
  round_trip(std::move(*s));
}

// Threads own disjoint pages and write/verify them (4 KiB and 512-byte
// pieces, some requests spanning two chunks) while every chunk moves out
// and back three times: no request fails, no read is stale.
void concurrent(std::unique_ptr<SpillStore> spill) {
  auto h = host();
  MigratingStore m(*h, std::move(spill), small_slices());
  constexpr unsigned kThreads = 4;
  const std::uint64_t pages = kSize / 4096;
  std::vector<std::uint64_t> gen(pages, 0);  // page p is owned by thread p % kThreads
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> errors{0}, stale{0}, ops{0};
  // The two pages either side of each chunk boundary belong to the reader of
  // spanning requests below: no worker writes them, so they stay zero.
  auto spanned = [](std::uint64_t p) {
    const std::uint64_t off = p * 4096 % kChunk;
    return off >= kChunk - 8192 || (off < 8192 && p * 4096 >= kChunk);
  };
  auto worker = [&](unsigned t) {
    std::mt19937_64 rng(t + 1);
    std::vector<std::byte> buf(8192), want(8192);
    while (!stop) {
      std::uint64_t p = rng() % pages;
      p -= p % kThreads;
      p += t;
      if (p >= pages || spanned(p)) continue;
      const unsigned kind = rng() % 4;
      if (kind == 0) {  // write the whole page
        fill(buf.data(), p, ++gen[p]);
        if (m.write(p * 4096, {buf.data(), 4096}) != 0) errors++;
      } else if (kind == 1) {  // rewrite one 512-byte sector of it with the new generation's bytes
        fill(want.data(), p, gen[p] + 1);
        std::vector<std::byte> cur(4096);
        if (m.read(p * 4096, cur) != 0) errors++;
        const unsigned sec = static_cast<unsigned>(rng() % 8);
        // Only meaningful when the rest already matches: write all 8 sectors one by one.
        for (unsigned s = 0; s < 8; ++s) {
          const unsigned k = (sec + s) % 8;
          if (m.write(p * 4096 + k * 512, {want.data() + k * 512, 512}) != 0) errors++;
        }
        ++gen[p];
      } else {  // read and check
        if (m.read(p * 4096, {buf.data(), 4096}) != 0) errors++;
        if (gen[p] == 0) {
          std::fill(want.begin(), want.begin() + 4096, std::byte{0});
        } else {
          fill(want.data(), p, gen[p]);
        }
        if (std::memcmp(buf.data(), want.data(), 4096) != 0) stale++;
      }
      ops++;
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  // A reader of requests spanning a chunk boundary (pages no worker writes:
  // they read back as zeros while both chunks move).
  std::thread spanning([&] {
    std::vector<std::byte> b(16384);
    while (!stop) {
      for (std::uint64_t c = 1; c < 16 && !stop; ++c) {
        std::fill(b.begin(), b.end(), std::byte{0xA5});
        if (m.read(c * kChunk - 8192, b) != 0) errors++;
        if (std::any_of(b.begin(), b.end(), [](std::byte x) { return x != std::byte{0}; })) stale++;
      }
    }
  });
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(m.evacuate());
    auto p = m.wait();
    EXPECT_TRUE(p.error.empty()) << p.error;
    EXPECT_EQ(p.chunks_done, 16U);
    ASSERT_TRUE(m.promote());
    p = m.wait();
    EXPECT_TRUE(p.error.empty()) << p.error;
    EXPECT_EQ(p.chunks_done, 16U);
  }
  stop = true;
  for (auto& t : threads) t.join();
  spanning.join();
  EXPECT_EQ(errors.load(), 0U);
  EXPECT_EQ(stale.load(), 0U);
  EXPECT_GT(ops.load(), 1000U);
  // And every page as last written, in the primary itself.
  std::vector<std::byte> buf(4096), want(4096);
  for (std::uint64_t p = 0; p < pages; ++p) {
    ASSERT_EQ(h->read(p * 4096, buf), 0);
    if (gen[p] == 0)
      std::fill(want.begin(), want.end(), std::byte{0});
    else
      fill(want.data(), p, gen[p]);
    ASSERT_EQ(buf, want) << "page " << p;
  }
}

TEST(MigratingStore, ConcurrentIoWhileEveryChunkMovesLz4) {
  auto s = make_lz4_spill(kSize);
  ASSERT_TRUE(s);
  concurrent(std::move(*s));
}

TEST(MigratingStore, ConcurrentIoWhileEveryChunkMovesFile) {
  SpillDir d;
  auto s = make_file_spill(d.path + "/spill", kSize);
  if (!s && s.error().code == EPERM)
    GTEST_SKIP() << "safe-path rules refuse /tmp here: " << s.error().message;
  ASSERT_TRUE(s) << s.error().describe();
  concurrent(std::move(*s));
}

// A spill store that fails its n-th write with ENOSPC (a full disk).
class FailingSpill final : public SpillStore {
 public:
  FailingSpill(std::unique_ptr<SpillStore> inner, int fail_at) : inner_(std::move(inner)), left_(fail_at) {}
  [[nodiscard]] std::uint64_t size() const override { return inner_->size(); }
  [[nodiscard]] const char* name() const override { return "failing"; }
  [[nodiscard]] bool failed() const override { return false; }
  int read(std::uint64_t o, std::span<std::byte> out) override { return inner_->read(o, out); }
  int write(std::uint64_t o, std::span<const std::byte> in) override {
    if (--left_ == 0) return ENOSPC;
    return inner_->write(o, in);
  }
  int zero(std::uint64_t o, std::uint64_t l) override { return inner_->zero(o, l); }
  int trim(std::uint64_t o, std::uint64_t l) override { return inner_->trim(o, l); }
  int flush() override { return 0; }
  void discard(std::uint64_t o, std::uint64_t l) override { inner_->discard(o, l); }
  [[nodiscard]] std::uint64_t stored_bytes() const override { return inner_->stored_bytes(); }
  [[nodiscard]] std::uint64_t footprint_bytes() const override { return inner_->footprint_bytes(); }
  [[nodiscard]] std::string describe() const override { return "failing"; }

 private:
  std::unique_ptr<SpillStore> inner_;
  std::atomic<int> left_;
};

TEST(MigratingStore, SpillFailureMidMoveLeavesTheChunkResidentAndIntact) {
  auto h = host();
  std::vector<std::byte> page(4096), got(4096);
  for (std::uint64_t p = 0; p < kSize / 4096; ++p) {
    fill(page.data(), p, 7);
    ASSERT_EQ(h->write(p * 4096, page), 0);
  }
  auto lz = make_lz4_spill(kSize);
  ASSERT_TRUE(lz);
  MoverOptions mo = small_slices();
  mo.workers = 1;
  MigratingStore m(*h, std::make_unique<FailingSpill>(std::move(*lz), 20), mo);  // in chunk 2
  ASSERT_TRUE(m.evacuate());
  auto p = m.wait();
  EXPECT_NE(p.error.find("chunk 2"), std::string::npos) << p.error;
  EXPECT_EQ(p.chunks_done, 2U);
  const auto st = m.states();
  EXPECT_EQ(st[0], ChunkState::spilled);
  EXPECT_EQ(st[2], ChunkState::resident);
  EXPECT_TRUE(h->chunk_resident(2));
  for (std::uint64_t pg = 0; pg < kSize / 4096; ++pg) {
    fill(page.data(), pg, 7);
    ASSERT_EQ(m.read(pg * 4096, got), 0);
    ASSERT_EQ(page, got) << "page " << pg;
  }
  ASSERT_TRUE(m.promote());
  p = m.wait();
  EXPECT_TRUE(p.error.empty()) << p.error;
  for (ChunkState s : m.states()) EXPECT_EQ(s, ChunkState::resident);
}

// Writes landing while a chunk is half copied, below and above the
// watermark, reach the spill (below: directly; above: through the slices
// still to copy) and come back on promote.
TEST(MigratingStore, WritesDuringTheMoveAreNeitherLostNorStale) {
  constexpr std::uint64_t kBig = 4 * kChunk;
  auto h = host(kBig);
  auto lz = make_lz4_spill(kBig);
  ASSERT_TRUE(lz);
  MoverOptions mo;
  mo.slice_bytes = 16384;
  mo.workers = 1;
  std::atomic<bool> poke{false};
  MigratingStore* mp = nullptr;
  std::vector<std::byte> a(4096), b(4096), got(4096);
  fill(a.data(), 1, 1);
  fill(b.data(), 2, 2);
  mo.after_slice = [&](std::uint32_t chunk, std::uint64_t copied) {
    if (chunk != 1 || copied != 32768 || poke.exchange(true)) return;
    // Chunk 1 is MOVING_OUT with two slices copied.
    EXPECT_EQ(mp->states()[1], ChunkState::moving_out);
    EXPECT_EQ(mp->write(kChunk + 4096, a), 0);   // below the watermark
    EXPECT_EQ(mp->write(kChunk + 49152, b), 0);  // above it
    EXPECT_EQ(mp->read(kChunk + 4096, got), 0);
    EXPECT_EQ(got, a);
  };
  MigratingStore m(*h, std::move(*lz), mo);
  mp = &m;
  ASSERT_TRUE(m.evacuate());
  auto p = m.wait();
  ASSERT_TRUE(poke.load());
  EXPECT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(m.states()[1], ChunkState::spilled);
  auto* spill = const_cast<SpillStore*>(m.spill());
  ASSERT_EQ(spill->read(kChunk + 4096, got), 0);
  EXPECT_EQ(got, a);
  ASSERT_EQ(spill->read(kChunk + 49152, got), 0);
  EXPECT_EQ(got, b);
  ASSERT_TRUE(m.promote());
  m.wait();
  ASSERT_EQ(h->read(kChunk + 4096, got), 0);
  EXPECT_EQ(got, a);
  ASSERT_EQ(h->read(kChunk + 49152, got), 0);
  EXPECT_EQ(got, b);
}

std::string state_map(const MigratingStore& m) {
  std::string s;
  for (ChunkState c : m.states()) s += state_letter(c);
  const MoveProgress p = m.progress();
  return s + " job " + p.job + (p.running ? " running" : " ended") + ", " + std::to_string(p.chunks_done) +
         "/" + std::to_string(p.chunks_total) + " chunks";
}

// A slice is copied without the chunk's lock: pages written between the
// copy's read of the source and its write to the destination (the copy
// carries their old bytes) are marked dirty and copied again before the
// watermark passes them. A few pages are re-copied under the hold; many
// (more than one short hold should copy) first without it. Without the dirty
// marks, the spill would keep the old bytes and this test fails.
void writes_mid_copy(unsigned pages_written) {
  constexpr std::uint64_t kBigChunk = 256 * 1024;
  constexpr std::uint64_t kBig = 4 * kBigChunk;
  constexpr std::uint64_t kSlice = 32 * 4096;  // 128 KiB: two slices a chunk
  auto h = host(kBig, kBigChunk);
  std::vector<std::byte> page(4096), got(4096);
  for (std::uint64_t p = 0; p < kBig / 4096; ++p) {
    fill(page.data(), p, 1);
    ASSERT_EQ(h->write(p * 4096, page), 0);
  }
  auto lz = make_lz4_spill(kBig);
  ASSERT_TRUE(lz);
  MoverOptions mo;
  mo.slice_bytes = kSlice;
  mo.workers = 1;
  MigratingStore* mp = nullptr;
  std::atomic<int> pokes{0};
  // The second slice of chunk 2, once: its first pages_written pages.
  const std::uint64_t first = (2 * kBigChunk + kSlice) / 4096;
  mo.mid_copy = [&](std::uint32_t chunk, std::uint64_t at, std::uint64_t) {
    if (chunk != 2 || at != kSlice || pokes++ != 0) return;
    EXPECT_EQ(mp->states()[2], ChunkState::moving_out);
    std::vector<std::byte> b(4096);
    for (unsigned k = 0; k < pages_written; ++k) {
      const std::uint64_t p = first + k;
      fill(b.data(), p, 2);
      EXPECT_EQ(mp->write(p * 4096, b), 0);  // does not wait for the copy: it holds no lock
    }
  };
  MigratingStore m(*h, std::move(*lz), mo);
  mp = &m;
  tierswap::testing::Watchdog dog("evacuating with writes during a slice copy", std::chrono::seconds(60),
                                  [&] { return state_map(m); });
  ASSERT_TRUE(m.evacuate());
  auto p = m.wait();
  ASSERT_EQ(pokes.load(), 1);
  EXPECT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.pages_recopied, pages_written) << "pages written during the copy, copied again";
  auto* spill = const_cast<SpillStore*>(m.spill());
  for (std::uint64_t pg = 2 * kBigChunk / 4096; pg < 3 * kBigChunk / 4096; ++pg) {
    const bool written = pg >= first && pg < first + pages_written;
    fill(page.data(), pg, written ? 2 : 1);
    ASSERT_EQ(spill->read(pg * 4096, got), 0);
    ASSERT_EQ(page, got) << "page " << pg << (written ? " (written during its copy)" : "");
  }
  ASSERT_TRUE(m.promote());
  m.wait();
  for (std::uint64_t pg = first; pg < first + 32; ++pg) {
    fill(page.data(), pg, pg - first < pages_written ? 2 : 1);
    ASSERT_EQ(h->read(pg * 4096, got), 0);
    ASSERT_EQ(page, got) << "page " << pg << " after promote";
  }
}

TEST(MigratingStore, AFewPagesWrittenDuringTheirSliceCopyAreCopiedAgain) {
  writes_mid_copy(3);
}

TEST(MigratingStore, ManyPagesWrittenDuringTheirSliceCopyAreCopiedAgain) {
  writes_mid_copy(24);  // more than one short hold re-copies: a round without it first
}

// Batches (submit) touching several chunks in random order while several
// movers wait for chunks' exclusive holds: the locks are taken in chunk
// order, so nothing deadlocks (taken in the batch's order, two batches and
// two waiting movers deadlocked at once: the writer-preferring locks let no
// new reader in). Checksummed: every read sees the last write.
TEST(MigratingStore, BatchesAcrossChunksInAnyOrderWhileMoversWait) {
  auto h = host();
  auto lz = make_lz4_spill(kSize);
  ASSERT_TRUE(lz);
  MoverOptions mo;
  mo.slice_bytes = 4096;
  mo.workers = 4;
  MigratingStore m(*h, std::move(*lz), mo);
  tierswap::testing::Watchdog dog("batches across chunks during moves", std::chrono::seconds(90),
                                  [&] { return state_map(m); });
  constexpr unsigned kThreads = 4, kDepth = 16;
  const std::uint64_t pages = kSize / 4096;
  std::vector<std::uint64_t> gen(pages, 0);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> errors{0}, stale{0}, batches{0};
  auto worker = [&](unsigned t) {
    std::mt19937_64 rng(t + 5);
    std::vector<std::byte> buf(kDepth * 4096), want(4096);
    while (!stop) {
      IoRequest batch[kDepth];
      std::uint64_t pg[kDepth];
      const bool write = rng() % 2 == 0;
      for (unsigned n = 0; n < kDepth;) {
        std::uint64_t p = rng() % pages;
        p = p - p % kThreads + t;
        if (p >= pages || std::find(pg, pg + n, p) != pg + n) continue;
        pg[n] = p;
        if (write) fill(buf.data() + n * 4096, p, gen[p] + 1);
        batch[n] = {write ? Op::write : Op::read, p * 4096, 4096, buf.data() + n * 4096, -1};
        ++n;
      }
      m.submit(batch);
      for (unsigned k = 0; k < kDepth; ++k) {
        if (batch[k].error != 0) {
          errors++;
        } else if (write) {
          ++gen[pg[k]];
        } else {
          if (gen[pg[k]] == 0)
            std::fill(want.begin(), want.end(), std::byte{0});
          else
            fill(want.data(), pg[k], gen[pg[k]]);
          if (std::memcmp(buf.data() + k * 4096, want.data(), 4096) != 0) stale++;
        }
      }
      batches++;
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(m.evacuate());
    EXPECT_TRUE(m.wait().error.empty());
    ASSERT_TRUE(m.promote());
    EXPECT_TRUE(m.wait().error.empty());
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0U);
  EXPECT_EQ(stale.load(), 0U);
  EXPECT_GT(batches.load(), 100U);
}

TEST(MigratingStore, CancelLeavesEveryChunkInAStableState) {
  constexpr std::uint64_t kBig = 64 * kChunk;
  auto h = host(kBig);
  auto lz = make_lz4_spill(kBig);
  ASSERT_TRUE(lz);
  MoverOptions mo = small_slices();
  std::atomic<int> slices{0};
  mo.after_slice = [&](std::uint32_t, std::uint64_t) {
    if (++slices == 40) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  };
  MigratingStore m(*h, std::move(*lz), mo);
  ASSERT_TRUE(m.evacuate());
  while (slices < 40) std::this_thread::yield();
  m.cancel();
  const auto p = m.progress();
  EXPECT_FALSE(p.running);
  EXPECT_TRUE(p.cancelled);
  EXPECT_LT(p.chunks_done, 64U);
  std::uint32_t spilled = 0;
  for (ChunkState s : m.states()) {
    EXPECT_TRUE(s == ChunkState::resident || s == ChunkState::spilled);
    spilled += s == ChunkState::spilled;
  }
  EXPECT_EQ(spilled, p.chunks_done);
  EXPECT_EQ(h->resident_bytes(), (64 - spilled) * kChunk);
}

TEST(MigratingStore, SubmitRoutesEachRequestToWhereItsChunkIs) {
  auto h = host();
  auto lz = make_lz4_spill(kSize);
  ASSERT_TRUE(lz);
  MigratingStore m(*h, std::move(*lz), small_slices());
  std::vector<std::byte> w(16 * 4096), r(16 * 4096);
  fill(w.data(), 9, 9, static_cast<std::uint32_t>(w.size()));
  ASSERT_TRUE(m.evacuate());
  m.wait();
  ASSERT_TRUE(m.promote());  // half back, while submitting
  std::vector<IoRequest> batch;
  for (int i = 0; i < 16; ++i)
    batch.push_back({Op::write, static_cast<std::uint64_t>(i) * kChunk / 2 + 4096 * (i % 3), 4096,
                     w.data() + i * 4096, -1});
  batch.push_back({Op::write, kChunk - 2048, 4096, w.data(), -1});  // spans two chunks
  m.submit(batch);
  for (auto& io : batch) EXPECT_EQ(io.error, 0);
  m.wait();
  for (auto& io : batch) {
    io.op = Op::read;
    io.data = r.data() + (io.data - w.data());
    io.error = -1;
  }
  batch.pop_back();
  m.submit(batch);
  for (auto& io : batch) EXPECT_EQ(io.error, 0);
  EXPECT_EQ(w, r);
}

}  // namespace
}  // namespace tierswap::vram
