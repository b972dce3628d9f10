#include "backends/vram/migrating_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/refusal.hpp"
#include "common/tsan_annotations.hpp"

namespace tierswap::vram {

namespace {

// The mover reads a slice of the source WITHOUT the chunk's lock (step 2,
// and re-copies without the hold) while I/O may write the same pages: such
// a read may be torn by design, and what it read is never trusted (the
// dirty bits, taken under the exclusive hold, make those pages copy again).
// ThreadSanitizer reports every such overlap as a race; under it, this
// thread's accesses during that one read are left out of its checks. I/O,
// the destination's writes and everything else stay checked.
int racing_source_read(BlockStore& src, std::uint64_t offset, std::span<std::byte> out) {
  const tsan::IgnoreReads racing;
  return src.read(offset, out);
}

}  // namespace

char state_letter(ChunkState s) {
  switch (s) {
    case ChunkState::resident:
      return 'R';
    case ChunkState::moving_out:
      return 'O';
    case ChunkState::spilled:
      return 'S';
    case ChunkState::moving_in:
      return 'I';
  }
  return '?';
}

const char* state_name(ChunkState s) {
  switch (s) {
    case ChunkState::resident:
      return "resident";
    case ChunkState::moving_out:
      return "moving_out";
    case ChunkState::spilled:
      return "spilled";
    case ChunkState::moving_in:
      return "moving_in";
  }
  return "?";
}

namespace {

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

class Shared {
 public:
  explicit Shared(pthread_rwlock_t& l) : l_(l) { pthread_rwlock_rdlock(&l_); }
  ~Shared() { pthread_rwlock_unlock(&l_); }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

 private:
  pthread_rwlock_t& l_;
};

class Exclusive {
 public:
  explicit Exclusive(pthread_rwlock_t& l) : l_(l) { pthread_rwlock_wrlock(&l_); }
  ~Exclusive() { pthread_rwlock_unlock(&l_); }
  Exclusive(const Exclusive&) = delete;
  Exclusive& operator=(const Exclusive&) = delete;

 private:
  pthread_rwlock_t& l_;
};

bool modifies(Op op) {
  return op == Op::write || op == Op::zero || op == Op::trim;
}

}  // namespace

MigratingStore::MigratingStore(ChunkedStore& primary, std::unique_ptr<SpillStore> spill, MoverOptions options)
    : primary_(primary), spill_(std::move(spill)), opt_(options) {
  opt_.slice_bytes = std::max<std::uint64_t>(opt_.slice_bytes / 4096 * 4096, 4096);
  opt_.workers = std::clamp(opt_.workers, 1U, 64U);
  count_ = primary_.chunk_count();
  chunks_ = std::make_unique<Chunk[]>(count_);
  dirty_words_ = (opt_.slice_bytes / 4096 + 63) / 64;
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  for (std::uint32_t i = 0; i < count_; ++i) {
    pthread_rwlock_init(&chunks_[i].lock, &attr);
    chunks_[i].dirty = std::make_unique<std::atomic<std::uint64_t>[]>(dirty_words_);
    chunks_[i].state = primary_.chunk_resident(i) ? ChunkState::resident : ChunkState::spilled;
  }
  pthread_rwlockattr_destroy(&attr);
}

MigratingStore::~MigratingStore() {
  cancel();
  for (std::uint32_t i = 0; i < count_; ++i) pthread_rwlock_destroy(&chunks_[i].lock);
}

bool MigratingStore::failed() const {
  return primary_.failed() || (spill_ && spill_->failed());
}

int MigratingStore::apply(BlockStore& s, Op op, std::uint64_t offset, std::uint64_t length, std::byte* data) {
  switch (op) {
    case Op::read:
      return s.read(offset, {data, length});
    case Op::write:
      return s.write(offset, {data, length});
    case Op::zero:
      return s.zero(offset, length);
    case Op::trim:
      return s.trim(offset, length);
    case Op::flush:
      return s.flush();
  }
  return EINVAL;
}

// One request piece inside one chunk, under its lock held shared.
int MigratingStore::piece(Op op, std::uint64_t offset, std::uint64_t length, std::byte* data) {
  const auto i = static_cast<std::uint32_t>(offset / primary_.chunk_bytes());
  Chunk& c = chunks_[i];
  Shared hold(c.lock);
  switch (c.state.load(std::memory_order_relaxed)) {
    case ChunkState::resident:
      return apply(primary_, op, offset, length, data);
    case ChunkState::spilled:
      return apply(*spill_, op, offset, length, data);
    case ChunkState::moving_out:
    case ChunkState::moving_in: {
      const bool out = c.state.load(std::memory_order_relaxed) == ChunkState::moving_out;
      BlockStore& src = out ? static_cast<BlockStore&>(primary_) : *spill_;
      BlockStore& dst = out ? static_cast<BlockStore&>(*spill_) : primary_;
      const int e = apply(src, op, offset, length, data);
      if (e != 0 || !modifies(op)) return e;
      const std::uint64_t rel = offset - primary_.chunk_offset(i);
      // Overlapping the slice being copied: the mover copies its pages again.
      mark_dirty(c, rel, length);
      // Below the watermark the destination already has this range: it
      // takes the change too (beyond it, the coming slice copies carry it).
      if (rel < c.copied.load(std::memory_order_relaxed)) return apply(dst, op, offset, length, data);
      return 0;
    }
  }
  return EIO;
}

void MigratingStore::mark_dirty(Chunk& c, std::uint64_t rel, std::uint64_t length) {
  const std::uint64_t at = c.flight_at.load(std::memory_order_relaxed);
  const std::uint64_t end = c.flight_end.load(std::memory_order_relaxed);
  const std::uint64_t lo = std::max(rel, at), hi = std::min(rel + length, end);
  if (lo >= hi) return;
  for (std::uint64_t pg = (lo - at) / 4096; pg <= (hi - 1 - at) / 4096; ++pg)
    c.dirty[pg / 64].fetch_or(1ULL << (pg % 64), std::memory_order_relaxed);
}

int MigratingStore::each_piece(Op op, std::uint64_t offset, std::uint64_t length, std::byte* data) {
  const std::uint64_t cb = primary_.chunk_bytes();
  std::uint64_t done = 0;
  while (done < length) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t n = std::min(length - done, cb - pos % cb);
    if (const int e = piece(op, pos, n, data != nullptr ? data + done : nullptr); e != 0) return e;
    done += n;
  }
  return 0;
}

int MigratingStore::read(std::uint64_t offset, std::span<std::byte> out) {
  return each_piece(Op::read, offset, out.size(), out.data());
}
int MigratingStore::write(std::uint64_t offset, std::span<const std::byte> in) {
  return each_piece(Op::write, offset, in.size(), const_cast<std::byte*>(in.data()));
}
int MigratingStore::zero(std::uint64_t offset, std::uint64_t length) {
  return each_piece(Op::zero, offset, length, nullptr);
}
int MigratingStore::trim(std::uint64_t offset, std::uint64_t length) {
  return each_piece(Op::trim, offset, length, nullptr);
}
int MigratingStore::flush() {
  int e = primary_.flush();
  if (spill_ && e == 0) e = spill_->flush();
  return e;
}

// Requests inside one resident chunk go to the primary as one batch (what
// makes CudaStore fast), in windows of up to kWindow requests with the
// chunks' locks held shared; the rest go one by one through piece().
// Requests of one batch never overlap (the caller's contract), so their
// order within it does not matter.
void MigratingStore::submit(std::span<IoRequest> batch) {
  constexpr std::size_t kWindow = 64;
  const std::uint64_t cb = primary_.chunk_bytes();
  for (std::size_t base = 0; base < batch.size(); base += kWindow) {
    const std::size_t n = std::min(kWindow, batch.size() - base);
    IoRequest sub[kWindow];
    std::size_t sub_of[kWindow];
    std::uint32_t held[kWindow];
    std::uint32_t chunk_of[kWindow];
    bool single[kWindow];
    std::size_t nsub = 0, nheld = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const IoRequest& r = batch[base + k];
      single[k] = r.op == Op::flush || r.length == 0 || r.offset / cb != (r.offset + r.length - 1) / cb;
      if (single[k]) continue;
      chunk_of[k] = static_cast<std::uint32_t>(r.offset / cb);
      held[nheld++] = chunk_of[k];
    }
    // Ascending chunk order, each once: see the header (Locking).
    std::sort(held, held + nheld);
    nheld = static_cast<std::size_t>(std::unique(held, held + nheld) - held);
    for (std::size_t j = 0; j < nheld; ++j) pthread_rwlock_rdlock(&chunks_[held[j]].lock);
    for (std::size_t k = 0; k < n; ++k) {
      if (single[k]) continue;
      if (chunks_[chunk_of[k]].state.load(std::memory_order_relaxed) != ChunkState::resident) {
        single[k] = true;
        continue;
      }
      sub[nsub] = batch[base + k];
      sub_of[nsub++] = k;
    }
    if (nsub > 0) primary_.submit(std::span<IoRequest>(sub, nsub));
    for (std::size_t j = 0; j < nheld; ++j) pthread_rwlock_unlock(&chunks_[held[j]].lock);
    for (std::size_t j = 0; j < nsub; ++j) batch[base + sub_of[j]].error = sub[j].error;
    for (std::size_t k = 0; k < n; ++k) {
      if (!single[k]) continue;
      IoRequest& r = batch[base + k];
      r.error = r.op == Op::flush ? flush() : each_piece(r.op, r.offset, r.length, r.data);
    }
  }
}

std::vector<ChunkState> MigratingStore::states() const {
  std::vector<ChunkState> out(count_);
  for (std::uint32_t i = 0; i < count_; ++i) out[i] = chunks_[i].state.load();
  return out;
}

unsigned default_movers(const std::string& spill_spec) {
  if (!spill_spec.starts_with("lz4")) return 2;
  const unsigned cpus = std::max(1U, std::thread::hardware_concurrency());
  return std::clamp(cpus / 2, 2U, 8U);
}

Result<void> MigratingStore::evacuate() {
  return start(Dir::out);
}
Result<void> MigratingStore::promote() {
  return start(Dir::in);
}

void MigratingStore::join() {
  if (job_.joinable()) job_.join();
}

void MigratingStore::cancel() {
  cancel_ = true;
  join();
  cancel_ = false;
}

MoveProgress MigratingStore::wait() {
  join();
  return progress();
}

MoveProgress MigratingStore::progress() const {
  std::lock_guard lk(job_mu_);
  MoveProgress p = progress_;
  p.chunks_done = done_.load();
  p.bytes_moved = moved_.load();
  p.pages_recopied = recopied_.load();
  p.read_seconds = static_cast<double>(read_ns_.load()) / 1e9;
  p.write_seconds = static_cast<double>(write_ns_.load()) / 1e9;
  p.hold_seconds = static_cast<double>(hold_ns_.load()) / 1e9;
  p.chunk_seconds = static_cast<double>(chunk_ns_.load()) / 1e9;
  if (p.running) p.seconds = static_cast<double>(now_ns() - job_start_ns_) / 1e9;
  return p;
}

Result<void> MigratingStore::start(Dir dir) {
  const char* what = dir == Dir::out ? "evacuate" : "promote";
  if (!spill_)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   std::string(what) +
                       ": no spill store configured for this export (give tierswap-nbd --spill lz4 or "
                       "--spill file:PATH; in tierswap.yaml, spill: under the vram tier)");
  cancel();  // a running job stops where it is; its chunks are in a stable state
  std::vector<std::uint32_t> todo;
  const ChunkState from = dir == Dir::out ? ChunkState::resident : ChunkState::spilled;
  for (std::uint32_t i = 0; i < count_; ++i)
    if (chunks_[i].state.load() == from) todo.push_back(i);
  {
    std::lock_guard lk(job_mu_);
    progress_ = MoveProgress{};
    progress_.job = what;
    progress_.running = true;
    progress_.chunks_total = static_cast<std::uint32_t>(todo.size());
    job_start_ns_ = now_ns();
  }
  done_ = 0;
  moved_ = 0;
  recopied_ = 0;
  read_ns_ = 0;
  write_ns_ = 0;
  hold_ns_ = 0;
  chunk_ns_ = 0;
  if (dir == Dir::out) {
    std::uint64_t bytes = 0;
    for (std::uint32_t i : todo) bytes += primary_.chunk_length(i);
    spill_->expect(bytes);
  }
  job_ = std::thread([this, dir, todo = std::move(todo)]() mutable { run_job(dir, std::move(todo)); });
  return {};
}

void MigratingStore::run_job(Dir dir, std::vector<std::uint32_t> chunks) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  const unsigned n = std::min<unsigned>(opt_.workers, std::max<std::size_t>(chunks.size(), 1));
  auto worker = [&] {
    std::byte* buf = primary_.allocate_buffer(opt_.slice_bytes);
    if (buf == nullptr) {
      std::lock_guard lk(job_mu_);
      if (progress_.error.empty()) progress_.error = "cannot allocate a slice buffer of the primary store";
      stop = true;
      return;
    }
    for (;;) {
      const std::size_t k = next.fetch_add(1);
      if (k >= chunks.size() || stop || cancel_) break;
      auto r = move_chunk(dir, chunks[k], buf);
      if (!r) {
        std::lock_guard lk(job_mu_);
        if (progress_.error.empty() && !cancel_) progress_.error = r.error().describe();
        stop = true;
        break;
      }
      if (*r) done_.fetch_add(1);
    }
    primary_.free_buffer(buf, opt_.slice_bytes);
  };
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (dir == Dir::out) spill_->expect(0);
  std::lock_guard lk(job_mu_);
  progress_.running = false;
  progress_.cancelled = cancel_.load() && done_.load() < progress_.chunks_total;
  progress_.seconds = static_cast<double>(now_ns() - job_start_ns_) / 1e9;
  if (!progress_.error.empty())
    spdlog::error("{}: stopped after {} of {} chunks: {}", progress_.job, done_.load(),
                  progress_.chunks_total, progress_.error);
  else
    spdlog::info(
        "{}: {} of {} chunks, {} bytes in {:.3f} s ({} pages written during their copy, copied "
        "again){}",
        progress_.job, done_.load(), progress_.chunks_total, moved_.load(), progress_.seconds,
        recopied_.load(), progress_.cancelled ? " (cancelled)" : "");
}

// The dirty pages of the slice at `at` (chunk-relative) again, in runs.
int MigratingStore::recopy(BlockStore& src, BlockStore& dst, std::uint64_t base, std::uint64_t at,
                           std::uint64_t n, const std::vector<std::uint64_t>& bits, std::byte* buf,
                           bool& reading) {
  const std::uint64_t pages = std::min<std::uint64_t>(bits.size() * 64, (n + 4095) / 4096);
  std::uint64_t count = 0;
  for (std::uint64_t p = 0; p < pages;) {
    if ((bits[p / 64] >> (p % 64) & 1) == 0) {
      ++p;
      continue;
    }
    std::uint64_t q = p;
    while (q < pages && (bits[q / 64] >> (q % 64) & 1) != 0) ++q;
    const std::uint64_t off = base + at + p * 4096;
    const std::span<std::byte> run{buf, std::min(q * 4096, n) - p * 4096};
    reading = true;
    // Without the hold (the first rounds), I/O may write these pages meanwhile.
    if (const int e = racing_source_read(src, off, run); e != 0) return e;
    reading = false;
    if (const int e = dst.write(off, run); e != 0) return e;
    count += q - p;
    p = q;
  }
  recopied_.fetch_add(count, std::memory_order_relaxed);
  return 0;
}

// One chunk through the state machine (see the header).
Result<bool> MigratingStore::move_chunk(Dir dir, std::uint32_t i, std::byte* buf) {
  Chunk& c = chunks_[i];
  const bool out = dir == Dir::out;
  const ChunkState from = out ? ChunkState::resident : ChunkState::spilled;
  if (c.state.load() != from) return false;  // moved meanwhile (only one job runs: cannot happen)
  if (!out) {
    // SPILLED: no I/O reaches the primary's chunk, so it may be mapped now.
    const std::int64_t t0 = now_ns();
    auto r = primary_.restore_chunk(i);
    chunk_ns_.fetch_add(now_ns() - t0, std::memory_order_relaxed);
    if (!r)
      return wrap(r.error(), "promote: chunk " + std::to_string(i) + " (" + primary_.name() + " store)");
  }
  BlockStore& src = out ? static_cast<BlockStore&>(primary_) : *spill_;
  BlockStore& dst = out ? static_cast<BlockStore&>(*spill_) : primary_;
  const std::uint64_t base = primary_.chunk_offset(i);
  const std::uint64_t len = primary_.chunk_length(i);
  std::vector<std::uint64_t> bits(dirty_words_);
  // With the exclusive hold: [at, at+n) becomes the slice in flight.
  auto set_flight = [&](std::uint64_t at, std::uint64_t n) {
    c.flight_at.store(at, std::memory_order_relaxed);
    c.flight_end.store(at + n, std::memory_order_relaxed);
    for (std::size_t w = 0; w < dirty_words_; ++w) c.dirty[w].store(0, std::memory_order_relaxed);
  };
  // With the exclusive hold: takes (and clears) the dirty bits; how many.
  auto take_dirty = [&] {
    std::uint64_t count = 0;
    for (std::size_t w = 0; w < dirty_words_; ++w) {
      bits[w] = c.dirty[w].exchange(0, std::memory_order_relaxed);
      count += static_cast<std::uint64_t>(__builtin_popcountll(bits[w]));
    }
    return count;
  };
  {
    Exclusive hold(c.lock);
    c.copied = 0;
    set_flight(0, std::min(opt_.slice_bytes, len));
    c.state = out ? ChunkState::moving_out : ChunkState::moving_in;
  }
  auto abandon = [&](Result<bool> why) {
    {
      Exclusive hold(c.lock);
      c.state = from;
      c.copied = 0;
      set_flight(0, 0);
    }
    if (!out) (void)primary_.release_chunk(i);  // SPILLED again: nothing reaches it
    return why;
  };
  auto failure = [&](int e, bool reading, std::uint64_t at) {
    return abandon(fail(e, std::string(out ? "evacuate" : "promote") + ": chunk " + std::to_string(i) + ": " +
                               (reading ? "reading the " : "writing the ") +
                               (reading ? src.name() : dst.name()) + " store at offset " +
                               std::to_string(base + at)));
  };
  // Pages that may be re-copied with the exclusive hold at once; more are
  // re-copied without it first, at most kRecopyRounds times.
  constexpr std::uint64_t kRecopyLocked = 16;
  constexpr int kRecopyRounds = 3;
  for (std::uint64_t at = 0; at < len;) {
    if (cancel_) return abandon(false);
    const std::uint64_t n = std::min(opt_.slice_bytes, len - at);
    // Step 2: the copy, without the lock (the slice is in flight).
    const std::int64_t t0 = now_ns();
    if (const int e = racing_source_read(src, base + at, {buf, n}); e != 0) return failure(e, true, at);
    const std::int64_t t1 = now_ns();
    if (opt_.mid_copy) opt_.mid_copy(i, at, n);
    if (const int e = dst.write(base + at, {buf, n}); e != 0) return failure(e, false, at);
    const std::int64_t t2 = now_ns();
    read_ns_.fetch_add(t1 - t0, std::memory_order_relaxed);
    write_ns_.fetch_add(t2 - t1, std::memory_order_relaxed);
    // Step 3: re-copy what was written meanwhile, then commit.
    for (int round = 0;; ++round) {
      int e = 0;
      bool reading = false, committed = false;
      {
        Exclusive hold(c.lock);
        const std::uint64_t dirty = take_dirty();
        if (dirty <= kRecopyLocked || round == kRecopyRounds) {
          if (dirty > 0) e = recopy(src, dst, base, at, n, bits, buf, reading);
          if (e == 0) {
            // A write that takes the lock after this sees the new watermark
            // and goes to the destination too.
            c.copied.store(at + n, std::memory_order_relaxed);
            set_flight(at + n, std::min(opt_.slice_bytes, len - at - n));
            committed = true;
          }
        }
      }
      // Many pages: copied again without the hold (their bits were taken;
      // pages written meanwhile set them again), then the next round.
      if (e == 0 && !committed) e = recopy(src, dst, base, at, n, bits, buf, reading);
      if (e != 0) return failure(e, reading, at);
      if (committed) break;
    }
    hold_ns_.fetch_add(now_ns() - t2, std::memory_order_relaxed);
    at += n;
    moved_.fetch_add(n, std::memory_order_relaxed);
    if (opt_.after_slice) opt_.after_slice(i, at);
  }
  {
    Exclusive hold(c.lock);
    c.state = out ? ChunkState::spilled : ChunkState::resident;
    c.copied = 0;
    set_flight(0, 0);
  }
  // Nothing reaches the old side any more.
  if (out) {
    const std::int64_t t0 = now_ns();
    auto r = primary_.release_chunk(i);
    chunk_ns_.fetch_add(now_ns() - t0, std::memory_order_relaxed);
    if (!r)
      spdlog::warn("evacuate: chunk {} is spilled but its memory was not given back: {}", i,
                   r.error().describe());
  } else {
    spill_->discard(base, len);
  }
  return true;
}

}  // namespace tierswap::vram
