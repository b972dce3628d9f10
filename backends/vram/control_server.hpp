// tierswap-nbd's control channel: line-based JSON over a stream socket,
// served by one thread that is not an I/O thread (it may allocate; it never
// touches the export's data). Either one connected socket (--control-fd N,
// the end of a socketpair) or a listening one (--control-socket PATH: a
// 0600 socket in a 0700 directory, unix_listener.hpp), whose connections
// (root or the exporter's own user, at most kMaxControlClients at once) are
// each served the same way: a daemon restarted after a crash reconnects
// there.
//
// Each request is one line, a JSON object with "cmd"; each answer is one
// line, a JSON object with "ok" (true/false) and, when false, "error" (a
// sentence naming what is wrong and the fix). Commands:
//   stats     requests and bytes per op, queue depth, latency p50/p99 (µs),
//             chunk states (counts and a map, one letter a chunk: R resident,
//             O moving out, S spilled, I moving in), resident bytes, the spill
//             store and its compression ratio
//   evacuate  start moving every resident chunk to the spill store
//   promote   start moving every spilled chunk back
//   progress  the running or last job: chunks total/done, bytes, seconds, GB/s
//   cancel    stop the running job (its chunks stay where they are)
// A line longer than kMaxControlLine is answered with an error and dropped.
#pragma once

#include <pthread.h>

#include <atomic>
#include <string>
#include <string_view>

#include "backends/vram/migrating_store.hpp"
#include "backends/vram/nbd_server.hpp"
#include "common/result.hpp"

namespace tierswap::vram {

inline constexpr std::size_t kMaxControlLine = 4096;
inline constexpr std::size_t kMaxControlClients = 8;

// The answer to one request line (without its newline). `store` is null
// when the export has no spill store (evacuate/promote answer why).
std::string handle_control_line(std::string_view line, const Server& server, const BlockStore& base,
                                MigratingStore* store);

// The figures "stats" answers, as a JSON text.
std::string control_stats(const Server& server, const BlockStore& base, MigratingStore* store);

class ControlServer {
 public:
  ControlServer(int fd, const Server& server, const BlockStore& base, MigratingStore* store)
      : fd_(fd), server_(server), base_(base), store_(store) {}
  ~ControlServer() { stop(); }
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Checks that fd is a stream socket (connected, or listening) and starts
  // the thread. Does not own fd.
  Result<void> start();
  void stop();

 private:
  void loop();

  int fd_;
  const Server& server_;
  const BlockStore& base_;
  MigratingStore* store_;
  pthread_t thread_{};
  bool running_ = false;
  bool listening_ = false;
  std::atomic<bool> stop_{false};
};

}  // namespace tierswap::vram
