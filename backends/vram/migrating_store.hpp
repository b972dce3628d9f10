// MigratingStore: the export as tierswap-nbd serves it when a spill store is
// configured. It moves chunks of the primary store (HostStore, CudaStore)
// to the spill store and back while it keeps serving I/O, so that a VRAM
// tier gives its memory back chunk by chunk without swapoff (the kernel's
// swap area stays up and no RAM is needed beyond the movers' buffers).
//
// Per-chunk state machine (docs/evacuation.md has the same with reasons):
//
//            evacuate                        (last slice copied)
//   RESIDENT ─────────► MOVING_OUT ──────────────────────────► SPILLED
//      ▲                    │ error / cancel: back to RESIDENT     │
//      │                    ▼  (the primary still holds it all)    │ promote
//      │ (last slice copied)                                       ▼
//      └──────────────────────────────────────────────────── MOVING_IN
//                  error / cancel: back to SPILLED (chunk released again)
//
//   RESIDENT   data in the primary store; all I/O goes there.
//   MOVING_OUT source = primary, destination = spill.
//   SPILLED    the primary's chunk is released; all I/O goes to the spill.
//   MOVING_IN  the primary's chunk is allocated again; source = spill,
//              destination = primary.
//
// During a move the source holds every byte of the chunk and stays the
// authority: reads are served from it, and every modifying request (write,
// zero, trim) goes to it. The mover copies the chunk in slices
// (slice_bytes) WITHOUT holding the chunk's lock, and decides under a short
// exclusive hold whether the copy stands:
//
//   1. (exclusive) mark [at, at+n) as the slice in flight, clear its dirty
//      bits;
//   2. (no lock) read the slice from the source, write it to the
//      destination;
//   3. (exclusive) re-copy the pages whose dirty bit is set (few: only
//      pages written during step 2), then advance the watermark `copied` to
//      at+n and mark the next slice in flight. When many pages are dirty,
//      the hold is dropped and they are re-copied without the lock first
//      (at most kRecopyRounds times), so the hold stays short.
//
// I/O holds the chunk's lock shared. A modifying request goes to the
// source; when it starts below the watermark it goes to the destination as
// well; when it overlaps the slice in flight it sets that slice's dirty bits
// for its pages. A request that ran before step 1 is in the source before
// the copy reads it; one that overlaps step 2 is re-copied at step 3 (the
// dirty bits are read under the exclusive hold, after every such request
// has finished); one after step 3 is below the watermark and is written to
// both sides. So the destination is never stale, nothing written is lost,
// and no read is served from a half-copied place. When the last slice is
// copied the state flips under the exclusive hold; only then is the old side
// released (primary) or discarded (spill), with no I/O able to reach it.
//
// Locking: one writer-preferring rwlock per chunk (a mover is not starved
// by a steady stream of I/O). I/O waits at most for one commit (step 3) on
// the chunk it touches, never for a slice copy; I/O to other chunks does not
// wait. A request spanning chunks is split at the boundary. A batch
// (submit()) takes the locks of the chunks it touches in ascending chunk
// order (with writer preference, two batches taking them in different
// orders while two movers wait would deadlock).
//
// Jobs: evacuate() and promote() start a background job (workers moving
// different chunks at once, each with its own slice buffer from the primary's
// allocate_buffer(): pinned memory for CudaStore, page-aligned for O_DIRECT)
// and return at once; progress() reports it; a new job cancels the running
// one first. Errors: EINVAL "no spill store configured" when there is none.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/vram/chunked_store.hpp"
#include "backends/vram/spill_store.hpp"
#include "common/result.hpp"

namespace tierswap::vram {

enum class ChunkState : std::uint8_t { resident, moving_out, spilled, moving_in };
// 'R', 'O', 'S', 'I' (a chunk map as one string).
char state_letter(ChunkState s);
const char* state_name(ChunkState s);

// Movers an evacuation uses by default for a spill spec (tierswap-nbd
// --spill): "lz4..." compresses on the movers' threads (about 1 GB/s of
// export each on the H200 machine's cores), so half the CPUs, 2 to 8 (8
// moved 4 GiB at 8 GB/s there); a file spill is the disk's speed and more
// movers only lengthen the queue that 4 KiB requests wait in: 2.
unsigned default_movers(const std::string& spill_spec);

struct MoverOptions {
  std::uint64_t slice_bytes = 256U << 10;  // copied without the lock, then committed
  unsigned workers = 2;                    // chunks moved at once
  // Test hooks, called by a mover outside the chunk's lock: after each
  // slice is committed, and between reading a slice from the source and
  // writing it to the destination (step 2 above).
  std::function<void(std::uint32_t chunk, std::uint64_t copied)> after_slice;
  std::function<void(std::uint32_t chunk, std::uint64_t at, std::uint64_t length)> mid_copy;
};

struct MoveProgress {
  std::string job;  // "", "evacuate", "promote"
  bool running = false;
  bool cancelled = false;
  std::uint32_t chunks_total = 0;  // to move when the job started
  std::uint32_t chunks_done = 0;
  std::uint64_t bytes_moved = 0;
  std::uint64_t pages_recopied = 0;  // written during their slice's copy, copied again
  // Where the movers' time went, summed over movers (seconds): reading the
  // source, writing the destination, waiting for and holding the chunks'
  // exclusive holds, releasing/restoring the primary's chunks.
  double read_seconds = 0, write_seconds = 0, hold_seconds = 0, chunk_seconds = 0;
  double seconds = 0;  // since the job started (until it ended)
  std::string error;   // the first error; empty when none
};

class MigratingStore final : public BlockStore {
 public:
  // spill may be null: the export is served from the primary and evacuate()
  // fails with a clear error.
  MigratingStore(ChunkedStore& primary, std::unique_ptr<SpillStore> spill, MoverOptions options = {});
  ~MigratingStore() override;
  MigratingStore(const MigratingStore&) = delete;
  MigratingStore& operator=(const MigratingStore&) = delete;

  [[nodiscard]] std::uint64_t size() const override { return primary_.size(); }
  [[nodiscard]] const char* name() const override { return primary_.name(); }
  [[nodiscard]] bool failed() const override;
  [[nodiscard]] bool prefers_batching() const override { return primary_.prefers_batching(); }

  int read(std::uint64_t offset, std::span<std::byte> out) override;
  int write(std::uint64_t offset, std::span<const std::byte> in) override;
  int zero(std::uint64_t offset, std::uint64_t length) override;
  int trim(std::uint64_t offset, std::uint64_t length) override;
  int flush() override;
  void submit(std::span<IoRequest> batch) override;
  [[nodiscard]] std::byte* allocate_buffer(std::size_t bytes) override {
    return primary_.allocate_buffer(bytes);
  }
  void free_buffer(std::byte* p, std::size_t bytes) override { primary_.free_buffer(p, bytes); }

  // Start moving every resident chunk to the spill (evacuate) or every
  // spilled chunk back (promote). EINVAL without a spill store.
  Result<void> evacuate();
  Result<void> promote();
  // Stops the running job after the slice being copied (its chunk returns
  // to where it was); waits for it.
  void cancel();
  // Waits for the running job to end; its progress.
  MoveProgress wait();
  [[nodiscard]] MoveProgress progress() const;

  [[nodiscard]] std::vector<ChunkState> states() const;
  [[nodiscard]] ChunkedStore& primary() { return primary_; }
  [[nodiscard]] const SpillStore* spill() const { return spill_.get(); }
  [[nodiscard]] std::uint64_t chunk_bytes() const { return primary_.chunk_bytes(); }

 private:
  struct Chunk {
    pthread_rwlock_t lock;
    std::atomic<ChunkState> state{ChunkState::resident};
    std::atomic<std::uint64_t> copied{0};  // watermark of the move in progress
    // The slice in flight [flight_at, flight_end) (chunk-relative; empty
    // when none) and one dirty bit per 4 KiB page of it. Changed under the
    // exclusive hold; dirty bits set under the shared one.
    std::atomic<std::uint64_t> flight_at{0}, flight_end{0};
    std::unique_ptr<std::atomic<std::uint64_t>[]> dirty;
  };
  enum class Dir { out, in };

  int piece(Op op, std::uint64_t offset, std::uint64_t length, std::byte* data);
  int each_piece(Op op, std::uint64_t offset, std::uint64_t length, std::byte* data);
  static int apply(BlockStore& s, Op op, std::uint64_t offset, std::uint64_t length, std::byte* data);
  Result<void> start(Dir dir);
  void run_job(Dir dir, std::vector<std::uint32_t> chunks);
  // true: moved; false: cancelled (the chunk is back where it was).
  Result<bool> move_chunk(Dir dir, std::uint32_t i, std::byte* buf);
  // Sets the dirty bits of [rel, rel+length) within chunk c's slice in flight.
  void mark_dirty(Chunk& c, std::uint64_t rel, std::uint64_t length);
  // Copies the runs of pages of the slice at chunk offset `at` whose bits
  // are set in `bits` from src to dst (through buf); errno, `reading` saying
  // which side failed.
  int recopy(BlockStore& src, BlockStore& dst, std::uint64_t base, std::uint64_t at, std::uint64_t n,
             const std::vector<std::uint64_t>& bits, std::byte* buf, bool& reading);
  void join();

  ChunkedStore& primary_;
  std::unique_ptr<SpillStore> spill_;
  MoverOptions opt_;
  std::unique_ptr<Chunk[]> chunks_;
  std::uint32_t count_ = 0;

  mutable std::mutex job_mu_;  // guards progress_ and the job thread
  MoveProgress progress_;
  std::int64_t job_start_ns_ = 0;
  std::thread job_;
  std::atomic<bool> cancel_{false};
  std::atomic<std::uint32_t> done_{0};
  std::atomic<std::uint64_t> moved_{0};
  std::atomic<std::uint64_t> recopied_{0};
  std::atomic<std::int64_t> read_ns_{0}, write_ns_{0}, hold_ns_{0}, chunk_ns_{0};
  std::size_t dirty_words_ = 0;
};

}  // namespace tierswap::vram
