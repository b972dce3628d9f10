// TierControl: the run-time channel to the process that serves a tier (the
// vram kind's tierswap-nbd), as the daemon's operation runner and status
// observer use it. A plug-in hands one out for a tier it owns
// (TierKind::control); the daemon never knows what is behind it.
//
//   evacuate()  start moving the tier's blocks out of its fast memory into
//               its spill store while the swap area stays up; returns at once
//   promote()   start moving them back
//   progress()  the running or last move
//   cancel()    stop the running move (its chunks stay where they are)
//   figures()   the server's figures (requests, bytes, queue depth, latency
//               percentiles, where its blocks are); `timeout_ms` bounds the
//               wait, including the wait for another caller of the same
//               channel (busy: answered with ErrorKind::busy at once)
//
// Figures without waiting (the daemon's tick; a server that is slow, stuck
// or dead must never hold it up), on a connection of their own so that a
// move's call and a figures request never queue behind each other:
//   request_figures()  sends a request unless one is still unanswered
//                      (true: sent now); never waits for the server
//                      (connecting included)
//   take_figures()     reads what has arrived, without waiting: the latest
//                      complete answer, or nullopt when none came since
//   figures_watch()    the fd to watch for readability before take_figures()
//                      (-1: no connection now) and a number that changes
//                      with each new connection (a watch made for an older
//                      one is stale)
// The defaults, for a control without such a connection: request does
// nothing, take answers with figures(0), no fd.
//
// Errors: ErrorKind::busy (the channel is in use by another thread and
// figures() would not wait), unsupported (no spill store), and the
// channel's own (a server that does not answer within the timeout, a closed
// channel, a malformed answer), each naming the tier.
//
// Thread-safety: every method may be called from any thread; calls on one
// channel are serialised.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace tierswap {

// One move of the whole tier (evacuate or promote), as the server reports it.
struct MoveStatus {
  std::string job;  // "evacuate", "promote"; empty before the first move
  bool running = false;
  bool cancelled = false;
  std::uint64_t chunks_total = 0;  // chunks this move had to move
  std::uint64_t chunks_done = 0;
  std::uint64_t bytes_moved = 0;
  double seconds = 0;
  std::string error;  // why the move stopped; empty when it did not fail
};

// Requests and bytes of one operation ("read", "write", "zero", "trim",
// "flush") since the server started.
struct OpFigures {
  std::string op;
  std::uint64_t requests = 0, bytes = 0;
};

// The serving process's figures at one instant.
struct TierFigures {
  std::vector<OpFigures> ops;
  // The latency histogram: {bucket's upper bound in ns, requests in it}
  // (not cumulative, ascending, empty buckets left out).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> latency_buckets;
  std::uint64_t requests = 0;
  std::uint64_t read_bytes = 0, write_bytes = 0;
  std::uint64_t queue_depth = 0, queue_depth_max = 0;
  double latency_p50_us = 0, latency_p99_us = 0;
  std::uint64_t latency_samples = 0;
  std::uint64_t size_bytes = 0;
  std::uint64_t resident_bytes = 0;  // in the fast memory (VRAM)
  std::uint64_t chunk_bytes = 0;
  std::uint64_t chunks_total = 0, chunks_resident = 0, chunks_spilled = 0, chunks_moving = 0;
  std::string spill;  // the spill store's kind ("lz4", "file"); empty: none
  double spill_ratio = 0;
  std::uint64_t spill_stored_bytes = 0, spill_footprint_bytes = 0;

  // Every chunk is in the spill store: the fast memory is given back.
  [[nodiscard]] bool evacuated() const { return chunks_total > 0 && chunks_spilled == chunks_total; }
};

class TierControl {
 public:
  virtual ~TierControl() = default;
  virtual Result<MoveStatus> evacuate() = 0;
  virtual Result<MoveStatus> promote() = 0;
  virtual Result<MoveStatus> progress() = 0;
  virtual Result<MoveStatus> cancel() = 0;
  virtual Result<TierFigures> figures(int timeout_ms) = 0;

  struct FiguresWatch {
    int fd = -1;
    std::uint64_t generation = 0;
  };
  virtual Result<bool> request_figures() { return true; }
  virtual Result<std::optional<TierFigures>> take_figures() {
    auto f = figures(0);
    if (!f) return std::unexpected(f.error());
    return std::optional<TierFigures>(std::move(*f));
  }
  virtual FiguresWatch figures_watch() { return {}; }
};

}  // namespace tierswap
