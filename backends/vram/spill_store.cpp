#include "backends/vram/spill_store.hpp"

#include <fcntl.h>
#include <lz4.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/safe_path.hpp"
#include "common/refusal.hpp"

namespace tierswap::vram {

double SpillStore::ratio() const {
  const std::uint64_t f = footprint_bytes();
  return f == 0 ? 1.0 : static_cast<double>(stored_bytes()) / static_cast<double>(f);
}

namespace {

constexpr std::uint64_t kDirectAlign = 4096;

bool aligned(std::uint64_t offset, std::uint64_t length, const void* p) {
  return offset % kDirectAlign == 0 && length % kDirectAlign == 0 &&
         reinterpret_cast<std::uintptr_t>(p) % kDirectAlign == 0;
}

class FileSpillStore final : public SpillStore {
 public:
  FileSpillStore(std::string path, std::uint64_t size, int buffered, int direct, std::string why)
      : path_(std::move(path)), size_(size), buffered_(buffered), direct_(direct), why_(std::move(why)) {}
  ~FileSpillStore() override {
    if (direct_ >= 0) ::close(direct_);
    ::close(buffered_);
  }

  [[nodiscard]] std::uint64_t size() const override { return size_; }
  [[nodiscard]] const char* name() const override { return "file"; }
  [[nodiscard]] bool failed() const override { return failed_; }

  int read(std::uint64_t offset, std::span<std::byte> out) override {
    return io(false, offset, out.data(), out.size());
  }
  int write(std::uint64_t offset, std::span<const std::byte> in) override {
    return io(true, offset, const_cast<std::byte*>(in.data()), in.size());
  }
  int zero(std::uint64_t offset, std::uint64_t length) override {
    // Zeroes the range but keeps its blocks allocated (no ENOSPC later).
    if (::fallocate(buffered_, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) == 0)
      return 0;
    static const std::byte zeros[64 * 1024] = {};
    for (std::uint64_t done = 0; done < length;) {
      const std::uint64_t n = std::min<std::uint64_t>(sizeof zeros, length - done);
      if (const int e = io(true, offset + done, const_cast<std::byte*>(zeros), n); e != 0) return e;
      done += n;
    }
    return 0;
  }
  int trim(std::uint64_t, std::uint64_t) override { return failed_ ? EIO : 0; }
  int flush() override { return failed_ ? EIO : 0; }

  // The blocks stay allocated: preallocated space is the point.
  void discard(std::uint64_t, std::uint64_t) override {}
  // Not counted: what a file holds costs its preallocated size either way.
  [[nodiscard]] std::uint64_t stored_bytes() const override { return 0; }
  [[nodiscard]] std::uint64_t footprint_bytes() const override { return 0; }
  [[nodiscard]] std::string describe() const override {
    return "file spill " + path_ + " (" + std::to_string(size_) + " bytes preallocated, unlinked; " +
           (direct_ >= 0 ? "O_DIRECT" : "buffered: " + why_) + ")";
  }

 private:
  int io(bool write, std::uint64_t offset, std::byte* p, std::uint64_t length) {
    if (failed_) return EIO;
    const int fd = direct_ >= 0 && aligned(offset, length, p) ? direct_ : buffered_;
    std::uint64_t done = 0;
    while (done < length) {
      const ssize_t r = write ? ::pwrite(fd, p + done, length - done, static_cast<off_t>(offset + done))
                              : ::pread(fd, p + done, length - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        const int e = r < 0 ? errno : EIO;
        if (e == ENOSPC) return ENOSPC;  // not a medium failure: the caller may retry elsewhere
        failed_ = true;
        spdlog::error("{}: {} at {} failed: {}", path_, write ? "write" : "read", offset + done,
                      std::strerror(e));
        return EIO;
      }
      done += static_cast<std::uint64_t>(r);
    }
    return 0;
  }

  std::string path_;
  std::uint64_t size_;
  int buffered_;
  int direct_;
  std::string why_;
  std::atomic<bool> failed_{false};
};

constexpr std::uint32_t kPage = 4096;
constexpr std::uint32_t kRound = 256;

// One LZ4 stream state per thread: LZ4_compress_default() zeroes a 16 KiB
// hash table for every call, as much work as compressing a 4 KiB page;
// LZ4_resetStream_fast() starts an independent block without that. Freed
// when its thread ends (movers are started per job: a plain pointer leaked
// 16 KiB per mover and job).
struct FreeStream {
  void operator()(LZ4_stream_t* p) const { std::free(p); }
};
LZ4_stream_t* thread_stream() {
  thread_local const std::unique_ptr<LZ4_stream_t, FreeStream> s = [] {
    auto* p = static_cast<LZ4_stream_t*>(std::malloc(sizeof(LZ4_stream_t)));
    if (p != nullptr) LZ4_initStream(p, sizeof(LZ4_stream_t));
    return std::unique_ptr<LZ4_stream_t, FreeStream>(p);
  }();
  return s.get();
}

int compress_page(const std::byte* in, char* out, int capacity, int acceleration) {
  LZ4_stream_t* st = thread_stream();
  if (st == nullptr)
    return LZ4_compress_fast(reinterpret_cast<const char*>(in), out, kPage, capacity, acceleration);
  LZ4_resetStream_fast(st);
  return LZ4_compress_fast_continue(st, reinterpret_cast<const char*>(in), out, kPage, capacity,
                                    acceleration);
}

class SpinLock {
 public:
  explicit SpinLock(std::atomic_flag& f) : f_(f) {
    while (f_.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
  }
  ~SpinLock() { f_.clear(std::memory_order_release); }
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

 private:
  std::atomic_flag& f_;
};

// Anonymous memory faulted in by the kernel in one call (MAP_POPULATE):
// under the exporter's mlockall(MCL_FUTURE|MCL_ONFAULT) it is locked as it
// is faulted. nullptr when the kernel has none.
std::byte* map_populated(std::size_t n) {
  void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

// `n` bytes (a power of two) aligned to `n` and asked to be backed by one
// transparent huge page (MADV_HUGEPAGE: one fault and one TLB entry for
// 2 MiB; measured on the H200 machine, without it an evacuation ran at
// half the speed), faulted in at once (MADV_POPULATE_WRITE, else by
// touching each page).
std::byte* map_aligned_populated(std::size_t n) {
  void* p = ::mmap(nullptr, 2 * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t at = (base + n - 1) & ~(static_cast<std::uintptr_t>(n) - 1);
  if (at > base) ::munmap(p, at - base);
  if (base + 2 * n > at + n) ::munmap(reinterpret_cast<void*>(at + n), base + 2 * n - (at + n));
  auto* b = reinterpret_cast<std::byte*>(at);
  ::madvise(b, n, MADV_HUGEPAGE);
  if (::madvise(b, n, MADV_POPULATE_WRITE) != 0)
    for (std::size_t i = 0; i < n; i += kPage) static_cast<volatile std::byte*>(b)[i] = std::byte{0};
  return b;
}

// Where the lz4 spill's compressed pages live. The export is cut into
// segments of kSegmentPages pages (64 MiB, the default chunk); each segment
// has its own arena: blocks of memory mapped with MAP_POPULATE (64 KiB, then
// doubling to kBigBlock), cut into slots of a page's size class (kRound
// steps up to a raw page), freed slots kept on a list per class for the
// next page of that class, and every block unmapped when the segment holds
// no page any more (its chunk went back to VRAM): RAM is held only while
// data is spilled, and given back to the kernel at once. A mover fills one
// chunk, so a segment's lock is rarely contended.
//
// Prefaulting: the first touch of fresh memory (page faults, the kernel
// zeroing each page, on a VM the host backing it) cost two thirds of a cold
// evacuation's time when each page was malloc()ed. During an evacuation
// (expect(bytes)) on a machine of 8 CPUs or more, a quarter of the CPUs
// (at most kMaxPrefaulters) map and populate kBigBlock blocks
// (huge pages) into a pool ahead of the movers, at most kMaxAhead
// bytes, on other cores while the movers compress; segments take their big
// blocks from the pool. When the evacuation ends (expect(0)) the pool's
// unused blocks are unmapped.
class SpillArena {
 public:
  static constexpr std::uint64_t kSegmentPages = 16384;
  static constexpr std::size_t kFirstBlock = 64U << 10;
  static constexpr std::size_t kBigBlock = 2U << 20;
  static constexpr std::size_t kMaxAhead = 256U << 20;
  static constexpr unsigned kMaxPrefaulters = 4;  // a quarter of the CPUs, 1 to 4

  explicit SpillArena(std::uint64_t pages) : segments_((pages + kSegmentPages - 1) / kSegmentPages) {}
  ~SpillArena() {
    expect(0);
    for (Segment& s : segments_) unmap_all(s);
  }
  SpillArena(const SpillArena&) = delete;
  SpillArena& operator=(const SpillArena&) = delete;

  // A slot of `cap` bytes (a multiple of kRound, at most kPage) for `page`
  // (`fresh`: the page held no slot, so the segment holds one page more);
  // nullptr when no memory is left.
  std::byte* take(std::uint64_t page, std::uint32_t cap, bool fresh) {
    Segment& s = segments_[page / kSegmentPages];
    std::lock_guard hold(s.lock);
    std::byte* p = slot(s, cap);
    if (p != nullptr && fresh) ++s.live;
    return p;
  }
  // Gives back `p`, a slot of `cap` bytes of `page`'s segment (`gone`: the
  // page holds no slot any more; the segment's last one unmaps its memory).
  void give(std::uint64_t page, std::byte* p, std::uint32_t cap, bool gone) {
    Segment& s = segments_[page / kSegmentPages];
    std::lock_guard hold(s.lock);
    void*& head = s.free[cap / kRound];
    *reinterpret_cast<void**>(p) = head;
    head = p;
    if (gone && --s.live == 0) unmap_all(s);
  }

  // About `bytes` of export are about to come in (an evacuation); 0: the
  // move is over. See the class comment.
  void expect(std::uint64_t bytes) {
    std::unique_lock lk(pool_mu_);
    if (bytes == 0) {
      ahead_ = 0;
      pool_cv_.notify_all();
      std::vector<std::thread> ts = std::move(prefault_);
      prefault_.clear();
      lk.unlock();
      for (auto& t : ts) t.join();
      lk.lock();
      for (std::byte* b : pool_) ::munmap(b, kBigBlock);
      pool_.clear();
      return;
    }
    // Compressed pages take about half the export; more is not mapped ahead.
    ahead_ = std::max<std::size_t>(1, std::min<std::uint64_t>(bytes / 2, kMaxAhead) / kBigBlock);
    // Only where cores are spare: on a small machine the prefaulter takes
    // the CPU the movers and the I/O threads need.
    const unsigned threads = std::min(std::thread::hardware_concurrency() / 4, kMaxPrefaulters);
    if (threads < 2) return;
    while (prefault_.size() < threads) prefault_.emplace_back([this] { prefault(); });
    pool_cv_.notify_all();
  }

  // Bytes mapped for compressed pages now (the store's real RAM cost).
  [[nodiscard]] std::uint64_t mapped_bytes() const { return mapped_.load(std::memory_order_relaxed); }

 private:
  struct Segment {
    std::mutex lock;  // may be held across an mmap: not a spin lock
    std::vector<std::pair<std::byte*, std::size_t>> blocks;
    std::byte* bump = nullptr;
    std::size_t left = 0;
    std::size_t next_block = kFirstBlock;
    std::array<void*, kPage / kRound + 1> free{};  // by cap / kRound
    std::uint64_t live = 0;                        // pages holding a slot
  };

  // Under s.lock.
  std::byte* slot(Segment& s, std::uint32_t cap) {
    void*& head = s.free[cap / kRound];
    if (head != nullptr) {
      auto* p = static_cast<std::byte*>(head);
      head = *static_cast<void**>(head);
      return p;
    }
    if (s.left < cap) {
      const std::size_t n = s.next_block;
      std::byte* b = n == kBigBlock ? from_pool() : nullptr;
      if (b == nullptr) b = n == kBigBlock ? map_aligned_populated(n) : map_populated(n);
      if (b == nullptr) return nullptr;
      s.blocks.push_back({b, n});
      mapped_.fetch_add(n, std::memory_order_relaxed);
      s.bump = b;
      s.left = n;
      s.next_block = std::min(n * 2, kBigBlock);
    }
    std::byte* p = s.bump;
    s.bump += cap;
    s.left -= cap;
    return p;
  }
  void unmap_all(Segment& s) {
    for (auto [b, n] : s.blocks) {
      ::munmap(b, n);
      mapped_.fetch_sub(n, std::memory_order_relaxed);
    }
    s.blocks.clear();
    s.bump = nullptr;
    s.left = 0;
    s.next_block = kFirstBlock;
    s.free.fill(nullptr);
  }

  std::byte* from_pool() {
    std::lock_guard lk(pool_mu_);
    if (pool_.empty()) return nullptr;
    std::byte* b = pool_.back();
    pool_.pop_back();
    pool_cv_.notify_all();
    return b;
  }

  void prefault() {
    std::unique_lock lk(pool_mu_);
    for (;;) {
      pool_cv_.wait(lk, [&] { return ahead_ == 0 || pool_.size() < ahead_; });
      if (ahead_ == 0) return;
      lk.unlock();
      std::byte* b = map_aligned_populated(kBigBlock);
      lk.lock();
      if (b == nullptr) {  // no memory: the movers will say so
        ahead_ = 0;
        return;
      }
      pool_.push_back(b);
    }
  }

  std::vector<Segment> segments_;
  std::atomic<std::uint64_t> mapped_{0};
  std::mutex pool_mu_;  // the four below
  std::condition_variable pool_cv_;
  std::vector<std::byte*> pool_;  // kBigBlock each, populated
  std::size_t ahead_ = 0;         // blocks to keep in the pool; 0: none (no move)
  std::vector<std::thread> prefault_;
};

class Lz4SpillStore final : public SpillStore {
 public:
  Lz4SpillStore(std::uint64_t size, int acceleration)
      : size_(size), acceleration_(acceleration), pages_((size + kPage - 1) / kPage), arena_(pages_.size()) {}

  [[nodiscard]] std::uint64_t size() const override { return size_; }
  [[nodiscard]] const char* name() const override { return "lz4"; }
  [[nodiscard]] bool failed() const override { return failed_; }

  int read(std::uint64_t offset, std::span<std::byte> out) override {
    std::byte page[kPage];
    return each_page(offset, out.size(), [&](Page& pg, std::uint32_t in, std::uint32_t n, std::uint64_t at) {
      if (in == 0 && n == kPage) return load(pg, out.data() + at);
      if (const int e = load(pg, page); e != 0) return e;
      std::memcpy(out.data() + at, page + in, n);
      return 0;
    });
  }

  int write(std::uint64_t offset, std::span<const std::byte> in) override {
    std::byte page[kPage];
    return each_page(offset, in.size(),
                     [&](Page& pg, std::uint32_t at_in, std::uint32_t n, std::uint64_t at) {
                       if (at_in == 0 && n == kPage) return store(pg, in.data() + at);
                       if (const int e = load(pg, page); e != 0) return e;
                       std::memcpy(page + at_in, in.data() + at, n);
                       return store(pg, page);
                     });
  }

  int zero(std::uint64_t offset, std::uint64_t length) override {
    std::byte page[kPage];
    return each_page(offset, length, [&](Page& pg, std::uint32_t in, std::uint32_t n, std::uint64_t) {
      if (in == 0 && n == kPage) {
        set_zero(pg);
        return 0;
      }
      if (const int e = load(pg, page); e != 0) return e;
      std::memset(page + in, 0, n);
      return store(pg, page);
    });
  }
  int trim(std::uint64_t offset, std::uint64_t length) override { return zero(offset, length); }
  int flush() override { return failed_ ? EIO : 0; }

  void discard(std::uint64_t offset, std::uint64_t length) override {
    for (std::uint64_t p = offset / kPage; p < (offset + length + kPage - 1) / kPage && p < pages_.size();
         ++p) {
      PageLock hold(stripe(p));
      release(pages_[p], p);
    }
  }
  void expect(std::uint64_t bytes) override { arena_.expect(bytes); }
  [[nodiscard]] std::uint64_t stored_bytes() const override { return stored_.load(); }
  [[nodiscard]] std::uint64_t footprint_bytes() const override { return footprint_.load(); }
  [[nodiscard]] std::string describe() const override {
    return "lz4 spill in RAM (" + std::to_string(size_) + " bytes of export, compressed per 4 KiB page, " +
           std::to_string(arena_.mapped_bytes()) + " bytes mapped" +
           (acceleration_ > 1 ? ", acceleration " + std::to_string(acceleration_) : std::string()) + ")";
  }

 private:
  // A page's bytes and allocation change under its stripe's spin lock, so
  // that a read racing a write of the same page (the block layer does not
  // order them across connections) sees the old or the new page, never a
  // torn one or freed memory. Held for one page's (de)compression.
  static constexpr std::size_t kStripes = 4096;
  // Page -> stripe by a multiplicative hash, not page % kStripes: movers
  // copy different chunks at the same pace, and a chunk is a multiple of
  // kStripes pages, so with the modulo they all wanted the same stripe at
  // the same time and compressed one after another (measured on the H200:
  // evacuation at a quarter of the spill's own speed with 14 movers).
  std::atomic_flag& stripe(std::uint64_t page) {
    return stripes_[(page * 0x9E3779B97F4A7C15ULL) >> (64 - 12)];
  }
  static_assert(kStripes == 1U << 12);
  using PageLock = SpinLock;

  struct Page {
    std::byte* data = nullptr;
    std::uint16_t len = 0;  // 0: all zeros; kPage: raw
    std::uint16_t cap = 0;  // bytes allocated at data (a multiple of kRound, or kPage)
  };

  template <class F>
  int each_page(std::uint64_t offset, std::uint64_t length, F&& f) {
    if (failed_) return EIO;
    for (std::uint64_t done = 0; done < length;) {
      const std::uint64_t pos = offset + done;
      const auto in = static_cast<std::uint32_t>(pos % kPage);
      const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(kPage - in, length - done));
      const std::uint64_t pg = pos / kPage;
      PageLock hold(stripe(pg));
      if (const int e = f(pages_[pg], in, n, done); e != 0) return e;
      done += n;
    }
    return 0;
  }

  int load(const Page& pg, std::byte* out) {
    if (pg.len == 0) {
      std::memset(out, 0, kPage);
      return 0;
    }
    if (pg.len == kPage) {
      std::memcpy(out, pg.data, kPage);
      return 0;
    }
    const int r = LZ4_decompress_safe(reinterpret_cast<const char*>(pg.data), reinterpret_cast<char*>(out),
                                      pg.len, kPage);
    if (r != static_cast<int>(kPage)) {
      failed_ = true;
      spdlog::error("lz4 spill: a page does not decompress (LZ4 returned {}): marking the store failed", r);
      return EIO;
    }
    return 0;
  }

  static bool all_zero(const std::byte* p) {
    const auto* w = reinterpret_cast<const std::uint64_t*>(p);
    for (std::uint32_t i = 0; i < kPage / 8; ++i)
      if (w[i] != 0) return false;
    return true;
  }

  void set_zero(Page& pg) {
    if (pg.len != 0) {
      stored_.fetch_sub(kPage, std::memory_order_relaxed);
      footprint_.fetch_sub(pg.len, std::memory_order_relaxed);
    }
    pg.len = 0;
  }

  void release(Page& pg, std::uint64_t index) {
    set_zero(pg);
    if (pg.data == nullptr) return;
    arena_.give(index, pg.data, pg.cap, true);
    pg.data = nullptr;
    pg.cap = 0;
  }

  int store(Page& pg, const std::byte* in) {
    if (all_zero(in)) {
      set_zero(pg);
      return 0;
    }
    char out[LZ4_COMPRESSBOUND(kPage)];
    int n = compress_page(in, out, sizeof out, acceleration_);
    const bool raw = n <= 0 || n >= static_cast<int>(kPage - kRound);
    const auto len = static_cast<std::uint16_t>(raw ? kPage : n);
    if (len > pg.cap) {
      const std::uint16_t cap =
          raw ? kPage : static_cast<std::uint16_t>((len + kRound - 1) / kRound * kRound);
      const auto index = static_cast<std::uint64_t>(&pg - pages_.data());
      const bool fresh = pg.data == nullptr;
      std::byte* p = arena_.take(index, cap, fresh);
      if (p == nullptr) return ENOMEM;
      if (!fresh) arena_.give(index, pg.data, pg.cap, false);
      pg.data = p;
      pg.cap = cap;
    }
    std::memcpy(pg.data, raw ? static_cast<const void*>(in) : out, len);
    if (pg.len == 0) stored_.fetch_add(kPage, std::memory_order_relaxed);
    footprint_.fetch_add(len, std::memory_order_relaxed);
    footprint_.fetch_sub(pg.len, std::memory_order_relaxed);
    pg.len = len;
    return 0;
  }

  std::uint64_t size_;
  int acceleration_;
  std::vector<Page> pages_;
  SpillArena arena_;  // where pages_' data lives
  std::unique_ptr<std::atomic_flag[]> stripes_{new std::atomic_flag[kStripes]{}};
  std::atomic<bool> failed_{false};
  std::atomic<std::uint64_t> stored_{0}, footprint_{0};
};

}  // namespace

Result<std::unique_ptr<SpillStore>> make_lz4_spill(std::uint64_t size, int acceleration) {
  if (size == 0 || size % 512 != 0)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "lz4 spill: size " + std::to_string(size) + " must be a non-zero multiple of 512");
  if (acceleration < 1 || acceleration > 65537)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "lz4 spill: acceleration " + std::to_string(acceleration) + " is not in 1..65537");
  return std::unique_ptr<SpillStore>(new Lz4SpillStore(size, acceleration));
}

Result<std::unique_ptr<SpillStore>> make_file_spill(const std::string& path, std::uint64_t size) {
  if (path.empty() || path[0] != '/' || path.back() == '/')
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "spill file \"" + path + "\": give an absolute path to a file");
  const auto slash = path.rfind('/');
  const std::string dir_path = slash == 0 ? "/" : path.substr(0, slash);
  const std::string name = path.substr(slash + 1);
  const HostFs fs("/");
  auto dir = swap::open_safe_dir(fs, dir_path);
  if (!dir) return wrap(dir.error(), "spill file " + path);
  if (!dir->missing.empty())
    return refusal(
        ErrorKind::not_found, ENOENT,
        "spill file " + path + ": directory " + dir_path + " does not exist (create it, mode 0700)");
  // O_PATH descriptors from the walk: a real one for the directory.
  swap::UniqueFd d{::openat(dir->fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!d) return kernel_error(errno, "spill file " + path + ": opening " + dir_path);
  swap::UniqueFd fd{
      ::openat(d.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600)};
  if (!fd) {
    const int e = errno;
    if (e == EEXIST)
      return refusal(ErrorKind::invalid_argument, EEXIST,
                     "spill file " + path +
                         ": something is already there (a file or a link); tierswap-nbd creates its "
                         "spill file itself and never reuses one: remove it or pick another path");
    return kernel_error(e, "spill file " + path + ": cannot create it");
  }
  // From here on the name is ours: the data lives in the unnamed file.
  ::unlinkat(d.get(), name.c_str(), 0);
  if (::fchmod(fd.get(), 0600) != 0) return kernel_error(errno, "spill file " + path + ": chmod 0600");
  if (::fallocate(fd.get(), 0, 0, static_cast<off_t>(size)) != 0)
    return kernel_error(errno, "spill file " + path + ": fallocate " + std::to_string(size) + " bytes");
  // A second open file description of the same inode, for O_DIRECT.
  const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  int direct = ::open(self.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  std::string why;
  if (direct < 0) {
    why = std::string("the filesystem refused O_DIRECT (") + std::strerror(errno) + ")";
    spdlog::info("spill file {}: {}; using the page cache", path, why);
  }
  return std::unique_ptr<SpillStore>(new FileSpillStore(path, size, fd.release(), direct, why));
}

Result<std::unique_ptr<SpillStore>> make_spill(const std::string& spec, std::uint64_t size) {
  if (spec == "lz4") return make_lz4_spill(size);
  if (spec.starts_with("lz4:")) {
    const std::string a = spec.substr(4);
    char* end = nullptr;
    const long v = std::strtol(a.c_str(), &end, 10);
    if (a.empty() || *end != '\0' || v < 1 || v > 65537)
      return refusal(ErrorKind::invalid_argument, EINVAL,
                     "--spill " + spec + ": lz4:N takes an acceleration N from 1 (best ratio) to 65537");
    return make_lz4_spill(size, static_cast<int>(v));
  }
  if (spec.starts_with("file:")) return make_file_spill(spec.substr(5), size);
  return refusal(ErrorKind::invalid_argument, EINVAL,
                 "--spill " + spec + ": unknown spill store (use lz4, lz4:ACCELERATION or file:/PATH)");
}

}  // namespace tierswap::vram
