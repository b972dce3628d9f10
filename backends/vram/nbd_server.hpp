// The NBD server of tierswap-nbd.
//
// Threads (small 256 KiB stacks, each locked whole with lock_stacks):
// one I/O thread per connection slot, all created in start(), before
// anything is served; `connections` bounds how
// many clients can be attached at once (one more is refused). An accept
// thread hands listening-socket connections to idle slots. When the store
// prefers_batching(), one more thread, the batcher, gathers the requests
// that all connections have waiting at that moment into one store.submit().
//
// Per connection, the I/O thread reads every request that has arrived (up to
// `queue_depth` requests and `buffer_bytes` of payload) into a group, runs
// the group through the store (inline with submit() on this thread, or via
// the batcher), then sends all the replies with one sendmsg(). Requests
// larger than the buffer are streamed through it in chunks. A group ends
// early at FLUSH, at a request overlapping a write already in it, and at
// the first request whose bytes have not all arrived.
//
// Nothing is allocated on the I/O path: a slot's groups, receive buffer,
// payload buffers (from store.allocate_buffer(): pinned memory for
// CudaStore), iovecs are allocated, and every page of them written
// (resident, so locked under mlockall(MCL_ONFAULT)), before the slot serves
// its first client: in start() for the --fd sockets' slots (and slot 0),
// else by the accept thread when it assigns a slot its first client (an
// idle slot holds no pinned memory; a slot keeps its buffers until stop()).
// The batch array is allocated in start(). start() also runs one
// read, zero, write-back and flush of the first 4 KiB through the store,
// so that the store's I/O code (and the GPU driver's) is faulted in and
// locked before any client is served.
//
// Already-connected sockets (`fds`, e.g. socketpairs handed over by the
// daemon) take a slot each at start(); each must be a connected stream
// socket (checked: anything else is an EINVAL error naming the fd).
//
// Errors: store errors become EIO (or the store's errno) replies; protocol
// errors get the reply proto.md asks for (see nbd_protocol.hpp); a client
// that does not read its replies for `reply_timeout_ms` is dropped.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/vram/block_store.hpp"
#include "backends/vram/latency_histogram.hpp"
#include "backends/vram/nbd_protocol.hpp"
#include "common/result.hpp"

namespace tierswap::vram {

struct ServerOptions {
  std::string socket_path;              // "" for none
  std::vector<int> fds;                 // already-connected sockets to serve
  unsigned connections = 8;             // slots: clients attached at once
  std::size_t buffer_bytes = 1U << 20;  // payload buffer per group (two groups per slot)
  // A group carrying at least this many payload bytes is completed on the
  // slot's second thread while its reader receives the next group; smaller
  // groups are served inline by the reader (no thread hand-off). SIZE_MAX:
  // off (no second thread, one payload buffer per slot).
  std::size_t pipeline_bytes = SIZE_MAX;
  unsigned queue_depth = 64;         // requests per group
  int reply_timeout_ms = 30000;      // client not reading replies → dropped
  int handshake_timeout_ms = 10000;  // whole handshake (greeting to GO) → else dropped
  bool check_peer = true;            // SO_PEERCRED: root or our uid only
  // Each server thread mlock()s its whole stack before it serves (set by
  // the exporter when it locks its memory; see process_safety.hpp).
  bool lock_stacks = false;
  // Called first thing on every I/O thread (tests count allocations there).
  std::function<void()> on_io_thread_start;
};

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t requests = 0;
  std::uint64_t batches = 0;              // submit() calls made by the batcher
  std::uint64_t max_groups_in_batch = 0;  // most connections' groups one of them carried
  // Per Op (read, write, zero, trim, flush): requests served and their bytes.
  std::uint64_t op_requests[5] = {};
  std::uint64_t op_bytes[5] = {};
  std::uint64_t queue_depth = 0;      // requests received and not yet answered, now
  std::uint64_t queue_depth_max = 0;  // the most there were at once
  // From a group's first request received to its replies sent, per request.
  std::uint64_t latency_p50_ns = 0;
  std::uint64_t latency_p99_ns = 0;
  std::uint64_t latency_samples = 0;
  // The histogram behind them: {bucket's upper bound in ns, requests}, non-empty buckets.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> latency_buckets;
};

class Server {
 public:
  Server(BlockStore& store, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Allocates every buffer, binds the socket, starts the threads.
  Result<void> start();

  // Stops accepting, disconnects every client, joins the threads.
  void stop();

  // Clients connected now (in the handshake or attached).
  [[nodiscard]] unsigned clients() const { return clients_.load(); }
  // No listening socket and every --fd connection has ended.
  [[nodiscard]] bool finished() const;
  [[nodiscard]] ServerStats stats() const;

  struct Connection;  // one slot (defined in nbd_server.cpp)
  struct Group;       // a group of requests and its buffers (two per slot)

 private:
  void accept_loop();
  void worker_loop(Connection& c);
  void batcher_loop();
  bool assign(int fd);
  Result<void> prepare(Connection& c);
  void serve(Connection& c);
  void transmission(Connection& c);
  void completer_loop(Connection& c);
  void hand_over(Connection& c, Group& g, bool executed);
  bool wait_completer(Connection& c, bool whole);
  void execute(Connection& c, Group& g);
  bool send_replies(Connection& c, Group& g);
  bool large(Connection& c, Group& g, const nbd::Request& req);
  void free_buffers();
  void warm_up();
  [[nodiscard]] bool pipelined() const { return opt_.pipeline_bytes != SIZE_MAX; }
  void run_batch(Connection& c, IoRequest* ios, unsigned n);

  BlockStore& store_;
  ServerOptions opt_;
  bool batching_ = false;
  bool batcher_stop_ = false;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned> clients_{0};
  std::atomic<unsigned> fds_left_{0};
  std::atomic<std::uint64_t> accepted_{0}, refused_{0}, requests_{0}, batches_{0};
  std::atomic<std::uint64_t> max_groups_in_batch_{0};
  std::atomic<std::uint64_t> op_requests_[5] = {}, op_bytes_[5] = {};
  std::atomic<std::uint64_t> inflight_{0}, inflight_max_{0};
  LatencyHistogram latency_;

  std::vector<std::unique_ptr<Connection>> slots_;
  std::mutex slots_mu_;
  pthread_t accept_thread_{};
  bool accept_running_ = false;
  std::vector<pthread_t> workers_;
  std::vector<pthread_t> completers_;

  // Batcher state (only when batching_).
  std::mutex batch_mu_;
  std::condition_variable batch_cv_;
  std::vector<Connection*> batch_queue_;  // capacity: connections
  std::size_t batch_queued_ = 0;
  std::vector<IoRequest> batch_all_;  // capacity: connections * queue_depth
  pthread_t batcher_thread_{};
  bool batcher_running_ = false;
  bool started_ = false;
};

}  // namespace tierswap::vram
