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
// authority: reads are served from it. A mover copies the chunk in slices
// (slice_bytes), each under the chunk's lock held exclusively, and after
// each slice advances the chunk's watermark `copied`. I/O holds the chunk's
// lock shared; a modifying request (write, zero, trim) goes to the source
// and, when it starts below the watermark, to the destination as well. So a
// write either lands before its slice is copied (the copy carries it) or
// after (it is written to both): the destination is never stale, nothing
// written is lost, and no read is served from a half-copied place. When the
// last slice is copied the state flips under the exclusive lock; only then
// is the old side released (primary) or discarded (spill), with no I/O able
// to reach it.
//
// Locking: one writer-preferring rwlock per chunk (a mover is not starved
// by a steady stream of I/O). I/O waits at most one slice copy on the chunk
// it touches (the p99 cost of evacuation, see bench/evac); I/O to other
// chunks does not wait. A request spanning chunks is split at the boundary.
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

struct MoverOptions {
  std::uint64_t slice_bytes = 256U << 10;  // copied under one exclusive hold
  unsigned workers = 2;                    // chunks moved at once
  // Test hook: called by a mover after each slice, outside the chunk's lock.
  std::function<void(std::uint32_t chunk, std::uint64_t copied)> after_slice;
};

struct MoveProgress {
  std::string job;  // "", "evacuate", "promote"
  bool running = false;
  bool cancelled = false;
  std::uint32_t chunks_total = 0;  // to move when the job started
  std::uint32_t chunks_done = 0;
  std::uint64_t bytes_moved = 0;
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
  };
  enum class Dir { out, in };

  int piece(Op op, std::uint64_t offset, std::uint64_t length, std::byte* data);
  int each_piece(Op op, std::uint64_t offset, std::uint64_t length, std::byte* data);
  static int apply(BlockStore& s, Op op, std::uint64_t offset, std::uint64_t length, std::byte* data);
  Result<void> start(Dir dir);
  void run_job(Dir dir, std::vector<std::uint32_t> chunks);
  // true: moved; false: cancelled (the chunk is back where it was).
  Result<bool> move_chunk(Dir dir, std::uint32_t i, std::byte* buf);
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
};

}  // namespace tierswap::vram
