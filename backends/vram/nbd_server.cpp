#include "backends/vram/nbd_server.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "backends/vram/nbd_handshake.hpp"
#include "backends/vram/nbd_protocol.hpp"
#include "backends/vram/process_safety.hpp"
#include "backends/vram/unix_listener.hpp"
#include "common/refusal.hpp"
#include "common/tsan_annotations.hpp"

namespace tierswap::vram {

using namespace nbd;

namespace {

constexpr std::size_t kRxBytes = 128U << 10;
// With mlockall(MCL_FUTURE) a thread's whole stack is locked in RAM: the
// default 8 MiB per thread would dwarf every buffer. The I/O path keeps its
// state in preallocated buffers, not on the stack.
constexpr std::size_t kThreadStack = 256U << 10;

template <class F>
bool start_thread(pthread_t& t, F* fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kThreadStack);
  const int rc = pthread_create(
      &t, &attr,
      [](void* p) -> void* {
        std::unique_ptr<F> f(static_cast<F*>(p));
        (*f)();
        return nullptr;
      },
      fn);
  pthread_attr_destroy(&attr);
  if (rc != 0) delete fn;
  return rc == 0;
}

template <class L>
bool spawn(pthread_t& t, L lambda) {
  return start_thread(t, new L(std::move(lambda)));
}

struct Slot {
  Request req;
  int error = 0;
  std::byte* data = nullptr;  // payload buffer range (READ/WRITE), else null
  std::byte reply[kSimpleReplySize];
};

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

std::int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void set_timeout(int fd, int option, int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

// One recv() result against what is left to receive: data moves p and n on,
// EINTR retries; false on EOF, error or timeout.
bool received(ssize_t r, std::byte*& p, std::size_t& n) {
  if (r > 0) {
    p += r;
    n -= static_cast<std::size_t>(r);
    return true;
  }
  return r < 0 && errno == EINTR;
}

// Blocking; false on EOF, error or timeout.
bool recv_exact(int fd, std::byte* p, std::size_t n) {
  while (n > 0)
    if (!received(::recv(fd, p, n, MSG_WAITALL), p, n)) return false;
  return true;
}

// Blocking until deadline_ms (CLOCK_MONOTONIC, see now_ms()); false on EOF,
// error or when the deadline passes. The receive timeout is set again before
// each recv() to what is left, so that a client trickling one byte at a time
// cannot stretch the wait past the deadline.
bool recv_until(int fd, std::byte* p, std::size_t n, std::int64_t deadline_ms) {
  while (n > 0) {
    const std::int64_t left = deadline_ms - now_ms();
    if (left <= 0) return false;
    set_timeout(fd, SO_RCVTIMEO, static_cast<int>(left));
    if (!received(::recv(fd, p, n, 0), p, n)) return false;
  }
  return true;
}

// A client sends a request after it has read the replies it depends on
// (multi-conn: a READ on one connection after a WRITE acknowledged on
// another must see it). That order runs through the client, outside this
// process, where ThreadSanitizer cannot see it: every reply releases this
// and every request acquires it before it reaches the store.
char client_order;

// Sends every byte of iov[0..n) (modified in place), giving up when the
// client has not taken them within timeout_ms in total.
bool send_iov(int fd, iovec* iov, std::size_t n, int timeout_ms) {
  tsan::happens_before(&client_order);
  const std::int64_t deadline = now_ms() + timeout_ms;
  while (n > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = std::min<std::size_t>(n, IOV_MAX);
    const ssize_t r = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && now_ms() < deadline) continue;
      return false;
    }
    auto left = static_cast<std::size_t>(r);
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --n;
    }
    if (n > 0 && left > 0) {
      iov->iov_base = static_cast<std::byte*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
    if (n > 0 && now_ms() >= deadline) return false;
  }
  return true;
}

bool send_bytes(int fd, const void* p, std::size_t n, int timeout_ms) {
  iovec iov{const_cast<void*>(p), n};
  return send_iov(fd, &iov, 1, timeout_ms);
}

Op op_of(std::uint16_t type) {
  switch (type) {
    case kCmdRead:
      return Op::read;
    case kCmdWrite:
      return Op::write;
    case kCmdTrim:
      return Op::trim;
    case kCmdWriteZeroes:
      return Op::zero;
    default:
      return Op::flush;
  }
}

bool modifies(std::uint16_t type) {
  return type == kCmdWrite || type == kCmdTrim || type == kCmdWriteZeroes;
}

}  // namespace

// One group of requests: its slots, the store requests, the reply iovecs and
// the payload buffer they point into. A connection has two, so that its
// reader can receive the next group while its completer runs the last one.
struct Server::Group {
  std::byte* payload = nullptr;  // from store.allocate_buffer()
  std::vector<Slot> slots;
  std::vector<IoRequest> ios;
  std::vector<unsigned> io_slot;
  std::vector<iovec> iov;
  unsigned n = 0;
  std::int64_t t0_ns = 0;  // when its first request was received
};

struct Server::Connection {
  unsigned index = 0;
  std::condition_variable cv;  // with Server::slots_mu_
  int fd = -1;
  bool from_list = false;

  std::size_t payload_bytes = 0;  // of each group's payload buffer
  bool prepared = false;          // buffers allocated (prepare())
  Group group[2];
  unsigned cur = 0;  // the group the reader fills
  std::vector<std::byte> rx;
  std::size_t rx_begin = 0, rx_end = 0;
  bool eof = false;
  // The last request's payload did not fit the receive buffer: the next
  // read takes one request header only, so that a following large payload
  // goes straight from the socket into the payload buffer, not through rx.
  bool header_only = false;
  std::vector<std::byte> option;  // handshake option payload

  // Completer hand-off (with mu): the reader gives it a group to execute and
  // reply to, and receives the next group meanwhile. One group at a time.
  std::mutex mu;
  std::condition_variable work_cv, done_cv;
  Group* work = nullptr;       // handed over, not yet completed
  bool work_executed = false;  // work has been through the store
  bool completer_stop = false;
  bool dead = false;  // the completer could not send: the connection is over

  // Batcher hand-off (with Server::batch_mu_).
  std::condition_variable batch_cv;
  IoRequest* batch_ios = nullptr;
  unsigned batch_n = 0;
  bool batch_done = false;

  [[nodiscard]] std::size_t avail() const { return rx_end - rx_begin; }
  void consume(std::size_t n) {
    rx_begin += n;
    if (rx_begin == rx_end) rx_begin = rx_end = 0;
  }
  // Reads what is there (blocking: at least one byte). >0 bytes read, 0
  // nothing now (non-blocking), -1 EOF or error.
  int fill(bool blocking) {
    if (rx_begin > 0 && rx.size() - rx_end < kRequestSize) {
      std::memmove(rx.data(), rx.data() + rx_begin, avail());
      rx_end -= rx_begin;
      rx_begin = 0;
    }
    std::size_t want = rx.size() - rx_end;
    if (header_only && avail() < kRequestSize) want = kRequestSize - avail();
    for (;;) {
      const ssize_t r = ::recv(fd, rx.data() + rx_end, want, blocking ? 0 : MSG_DONTWAIT);
      if (r > 0) {
        rx_end += static_cast<std::size_t>(r);
        header_only = false;
        return static_cast<int>(r);
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !blocking) return 0;
      return -1;
    }
  }
  // The payload of the request just consumed: into dest, or discarded when
  // dest is null. false: the client went away mid-payload.
  bool take_payload(std::byte* dest, std::size_t n) {
    const std::size_t have = std::min(avail(), n);
    if (dest != nullptr) std::memcpy(dest, rx.data() + rx_begin, have);
    consume(have);
    n -= have;
    if (n == 0) return true;
    if (dest != nullptr) return recv_exact(fd, dest + have, n);
    while (n > 0) {  // drain through the (now empty) receive buffer
      const std::size_t chunk = std::min(n, rx.size());
      if (!recv_exact(fd, rx.data(), chunk)) return false;
      n -= chunk;
    }
    return true;
  }
};

Server::Server(BlockStore& store, ServerOptions options) : store_(store), opt_(std::move(options)) {}

Server::~Server() {
  stop();
}

Result<void> Server::start() {
  if (opt_.connections == 0)
    return refusal(ErrorKind::invalid_argument, EINVAL, "--connections must be at least 1");
  if (opt_.fds.size() > opt_.connections)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "--fd given " + std::to_string(opt_.fds.size()) + " times but --connections is " +
                       std::to_string(opt_.connections));
  if (opt_.queue_depth == 0 || opt_.queue_depth > 512) opt_.queue_depth = 64;
  opt_.buffer_bytes = std::max<std::size_t>(opt_.buffer_bytes, 64U << 10) / 4096 * 4096;
  batching_ = store_.prefers_batching();

  // The slots; the buffers of those that serve at once (the --fd sockets,
  // and slot 0 for the warm-up), before anything is served. The others get
  // theirs when their first client is assigned (see prepare()).
  for (unsigned i = 0; i < opt_.connections; ++i) {
    auto c = std::make_unique<Connection>();
    c->index = i;
    c->payload_bytes = opt_.buffer_bytes;
    slots_.push_back(std::move(c));  // stop() frees what was allocated
  }
  for (std::size_t i = 0; i < std::max<std::size_t>(opt_.fds.size(), 1); ++i)
    if (auto r = prepare(*slots_[i]); !r) return r;
  for (int fd : opt_.fds) {
    struct stat st {};
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
      return refusal(ErrorKind::invalid_argument, EINVAL,
                     "--fd " + std::to_string(fd) + ": not an open socket");
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
      return refusal(ErrorKind::invalid_argument, EINVAL,
                     "--fd " + std::to_string(fd) + ": not a stream socket");
    len = sizeof listening;
    if ((::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0) ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0)
      return refusal(ErrorKind::invalid_argument, EINVAL,
                     "--fd " + std::to_string(fd) +
                         ": not a connected socket (give a listening socket's path with --socket)");
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  warm_up();
  if (batching_) {
    batch_queue_.resize(opt_.connections);
    batch_all_.resize(static_cast<std::size_t>(opt_.connections) * opt_.queue_depth);
  }

  if (!opt_.socket_path.empty()) {
    auto fd = listen_private_unix(opt_.socket_path);
    if (!fd) return std::unexpected(fd.error());
    listen_fd_ = *fd;
  }

  started_ = true;
  for (auto& c : slots_) {
    pthread_t t{};
    if (!spawn(t, [this, conn = c.get()] { worker_loop(*conn); })) {
      stop();
      return kernel_error(EAGAIN, "cannot start the I/O thread of connection " + std::to_string(c->index));
    }
    workers_.push_back(t);
    if (!pipelined()) continue;
    if (!spawn(t, [this, conn = c.get()] { completer_loop(*conn); })) {
      stop();
      return kernel_error(EAGAIN,
                          "cannot start the completion thread of connection " + std::to_string(c->index));
    }
    completers_.push_back(t);
  }
  if (batching_) {
    if (!spawn(batcher_thread_, [this] { batcher_loop(); })) {
      stop();
      return kernel_error(EAGAIN, "cannot start the batching thread");
    }
    batcher_running_ = true;
  }
  fds_left_ = static_cast<unsigned>(opt_.fds.size());
  for (int fd : opt_.fds) {
    std::lock_guard lk(slots_mu_);
    for (auto& c : slots_) {
      if (c->fd < 0) {
        c->fd = fd;
        c->from_list = true;
        clients_++;
        accepted_++;
        c->cv.notify_one();
        break;
      }
    }
  }
  if (listen_fd_ >= 0) {
    if (!spawn(accept_thread_, [this] { accept_loop(); })) {
      stop();
      return kernel_error(EAGAIN, "cannot start the accept thread");
    }
    accept_running_ = true;
  }
  spdlog::info("serving {} bytes from the {} store: {} connection slots, {} KiB buffer each, {}",
               store_.size(), store_.name(), opt_.connections, opt_.buffer_bytes >> 10,
               batching_ ? "requests batched across connections" : "requests served inline");
  return {};
}

void Server::stop() {
  if (!started_) {
    free_buffers();
    return;
  }
  started_ = false;
  stopping_ = true;
  if (listen_fd_ >= 0) {
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (accept_running_) pthread_join(accept_thread_, nullptr);
    accept_running_ = false;
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(opt_.socket_path.c_str());
  }
  {
    std::lock_guard lk(slots_mu_);
    for (auto& c : slots_) {
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
      c->cv.notify_all();
    }
  }
  for (auto& t : workers_) pthread_join(t, nullptr);
  workers_.clear();
  if (batcher_running_) {
    batcher_running_ = false;
    {
      std::lock_guard lk(batch_mu_);
      batcher_stop_ = true;
    }
    batch_cv_.notify_all();
    pthread_join(batcher_thread_, nullptr);
  }
  for (auto& c : slots_) {
    std::lock_guard lk(c->mu);
    c->completer_stop = true;
    c->work_cv.notify_one();
  }
  for (auto& t : completers_) pthread_join(t, nullptr);
  completers_.clear();
  free_buffers();
}

// One read, zero, write-back and flush of the first 4 KiB (contents
// unchanged), through the store's own calls, before anything is served.
// A slot's buffers: payloads from the store (pinned for CudaStore), the
// groups' arrays, the receive and option buffers, every page of them
// written, so that they are resident (and locked, under mlockall) before
// the slot serves. Once per slot: they stay until stop().
Result<void> Server::prepare(Connection& conn) {
  if (conn.prepared) return {};
  for (Group& g : conn.group) {
    if (&g != &conn.group[0] && !pipelined()) break;
    g.payload = store_.allocate_buffer(conn.payload_bytes);
    if (g.payload == nullptr)
      return fail(ENOMEM, "cannot allocate the " + std::to_string(conn.payload_bytes) +
                              "-byte payload buffers of connection " + std::to_string(conn.index) +
                              " from the " + store_.name() + " store");
    g.slots.resize(opt_.queue_depth);
    g.ios.resize(opt_.queue_depth);
    g.io_slot.resize(opt_.queue_depth);
    g.iov.resize(2ULL * opt_.queue_depth + 2);
    touch_pages(g.payload, conn.payload_bytes);
  }
  conn.rx.resize(kRxBytes);
  conn.option.resize(kMaxOptionLength);
  conn.prepared = true;
  return {};
}

void Server::warm_up() {
  if (slots_.empty() || store_.size() < 4096) return;
  std::byte* buf = slots_[0]->group[0].payload;
  if (store_.read(0, {buf, 4096}) != 0) return;
  (void)store_.zero(0, 4096);
  (void)store_.write(0, {buf, 4096});
  (void)store_.flush();
}

void Server::free_buffers() {
  for (auto& c : slots_)
    for (Group& g : c->group) {
      store_.free_buffer(g.payload, c->payload_bytes);
      g.payload = nullptr;
    }
  slots_.clear();
}

bool Server::finished() const {
  return opt_.socket_path.empty() && fds_left_.load() == 0;
}

ServerStats Server::stats() const {
  ServerStats s{accepted_.load(), refused_.load(), requests_.load(), batches_.load(),
                max_groups_in_batch_.load()};
  for (int i = 0; i < 5; ++i) {
    s.op_requests[i] = op_requests_[i].load(std::memory_order_relaxed);
    s.op_bytes[i] = op_bytes_[i].load(std::memory_order_relaxed);
  }
  s.queue_depth = inflight_.load(std::memory_order_relaxed);
  s.queue_depth_max = inflight_max_.load(std::memory_order_relaxed);
  s.latency_p50_ns = latency_.percentile(0.50);
  s.latency_p99_ns = latency_.percentile(0.99);
  s.latency_samples = latency_.total();
  s.latency_buckets = latency_.buckets();
  return s;
}

bool Server::assign(int fd) {
  std::lock_guard lk(slots_mu_);
  if (stopping_) return false;
  for (auto& c : slots_) {
    if (c->fd < 0) {
      if (auto r = prepare(*c); !r) {
        spdlog::error("connection slot {}: {}", c->index, r.error().describe());
        return false;
      }
      c->fd = fd;
      c->from_list = false;
      clients_++;
      c->cv.notify_one();
      return true;
    }
  }
  return false;
}

void Server::accept_loop() {
  const unsigned own_uid = ::geteuid();
  while (!stopping_) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        ::usleep(10000);
        continue;
      }
      spdlog::error("accept on {}: {}", opt_.socket_path, std::strerror(errno));
      break;
    }
    if (opt_.check_peer) {
      if (auto ok = check_peer(fd, own_uid); !ok) {
        spdlog::warn("refused a connection: {}", ok.error().describe());
        refused_++;
        ::close(fd);
        continue;
      }
    }
    if (!assign(fd)) {
      spdlog::warn("refused a connection: all {} connection slots are busy (--connections)",
                   opt_.connections);
      refused_++;
      ::close(fd);
      continue;
    }
    accepted_++;
  }
}

void Server::worker_loop(Connection& c) {
  if (opt_.on_io_thread_start) opt_.on_io_thread_start();
  if (opt_.lock_stacks) lock_thread_stack();
  mark_io_flusher_thread();
  for (;;) {
    std::unique_lock lk(slots_mu_);
    c.cv.wait(lk, [&] { return c.fd >= 0 || stopping_; });
    if (c.fd < 0) return;
    const int fd = c.fd;
    lk.unlock();
    serve(c);
    lk.lock();
    c.fd = -1;
    const bool listed = c.from_list;
    lk.unlock();
    ::close(fd);
    clients_--;
    if (listed) fds_left_--;
  }
}

void Server::batcher_loop() {
  if (opt_.on_io_thread_start) opt_.on_io_thread_start();
  if (opt_.lock_stacks) lock_thread_stack();
  mark_io_flusher_thread();
  std::vector<Connection*> taken(opt_.connections);
  for (;;) {
    std::unique_lock lk(batch_mu_);
    batch_cv_.wait(lk, [&] { return batch_queued_ > 0 || batcher_stop_; });
    if (batch_queued_ == 0) return;
    const std::size_t m = batch_queued_;
    std::copy_n(batch_queue_.begin(), m, taken.begin());
    batch_queued_ = 0;
    lk.unlock();

    std::size_t total = 0;
    for (std::size_t i = 0; i < m; ++i) {
      std::copy_n(taken[i]->batch_ios, taken[i]->batch_n,
                  batch_all_.begin() + static_cast<std::ptrdiff_t>(total));
      total += taken[i]->batch_n;
    }
    store_.submit(std::span<IoRequest>(batch_all_.data(), total));
    batches_++;
    if (m > max_groups_in_batch_.load(std::memory_order_relaxed))  // only this thread writes it
      max_groups_in_batch_.store(m, std::memory_order_relaxed);
    total = 0;
    for (std::size_t i = 0; i < m; ++i) {
      for (unsigned j = 0; j < taken[i]->batch_n; ++j)
        taken[i]->batch_ios[j].error = batch_all_[total + j].error;
      total += taken[i]->batch_n;
    }
    lk.lock();
    for (std::size_t i = 0; i < m; ++i) {
      taken[i]->batch_done = true;
      taken[i]->batch_cv.notify_one();
    }
  }
}

// The connection's second thread: runs the groups its reader hands over
// (through the store, unless the reader already did) and sends their replies,
// one group at a time, in the order they were handed over.
void Server::completer_loop(Connection& c) {
  if (opt_.on_io_thread_start) opt_.on_io_thread_start();
  if (opt_.lock_stacks) lock_thread_stack();
  mark_io_flusher_thread();
  std::unique_lock lk(c.mu);
  for (;;) {
    c.work_cv.wait(lk, [&] { return c.work != nullptr || c.completer_stop; });
    if (c.work == nullptr) return;
    Group& g = *c.work;
    const bool run = !c.work_executed;
    lk.unlock();
    if (run) {
      execute(c, g);
      lk.lock();
      c.work_executed = true;
      c.done_cv.notify_one();
      lk.unlock();
    }
    const bool ok = send_replies(c, g);
    if (!ok) ::shutdown(c.fd, SHUT_RDWR);  // wakes the reader, which then ends the connection
    lk.lock();
    if (!ok) c.dead = true;
    c.work = nullptr;
    c.done_cv.notify_one();
  }
}

// Hands g to the completer (which must be idle). executed: the store part is
// done, only the replies are left.
void Server::hand_over(Connection& c, Group& g, bool executed) {
  std::lock_guard lk(c.mu);
  c.work = &g;
  c.work_executed = executed;
  c.work_cv.notify_one();
}

// Waits until the completer has run the group it holds through the store
// (whole: until it has also sent its replies). false: it could not send,
// the connection is over.
bool Server::wait_completer(Connection& c, bool whole) {
  std::unique_lock lk(c.mu);
  c.done_cv.wait(lk, [&] { return c.work == nullptr || (!whole && c.work_executed); });
  return !c.dead;
}

void Server::run_batch(Connection& c, IoRequest* ios, unsigned n) {
  if (!batching_) {
    store_.submit(std::span<IoRequest>(ios, n));
    return;
  }
  std::unique_lock lk(batch_mu_);
  c.batch_ios = ios;
  c.batch_n = n;
  c.batch_done = false;
  batch_queue_[batch_queued_++] = &c;
  batch_cv_.notify_one();
  c.batch_cv.wait(lk, [&] { return c.batch_done; });
}

// Handshake then transmission, on the connection's own thread. The whole
// handshake has one deadline (handshake_timeout_ms from the greeting): a
// client that sends a byte now and then still loses its slot when it runs out.
void Server::serve(Connection& c) {
  const int fd = c.fd;
  const std::int64_t deadline = now_ms() + opt_.handshake_timeout_ms;
  auto left = [&] { return static_cast<int>(std::max<std::int64_t>(deadline - now_ms(), 1)); };
  auto timed_out = [&] {
    if (now_ms() >= deadline)
      spdlog::warn("connection {}: handshake not finished within {} ms; closing", c.index,
                   opt_.handshake_timeout_ms);
  };
  auto send_until = [&](std::span<const std::byte> bytes) {
    set_timeout(fd, SO_SNDTIMEO, left());
    return send_bytes(fd, bytes.data(), bytes.size(), left());
  };

  Handshake hs(store_.size());
  auto g = hs.greeting();
  if (!send_until(g)) return timed_out();
  std::byte b[kOptionHeaderSize];
  if (!recv_until(fd, b, 4, deadline)) return timed_out();
  if (!hs.on_client_flags(load_be32(b))) return;
  for (bool in_handshake = true; in_handshake;) {
    OptionHeader h;
    if (!recv_until(fd, b, kOptionHeaderSize, deadline)) return timed_out();
    if (!parse_option_header(std::span<const std::byte, kOptionHeaderSize>(b, kOptionHeaderSize), h)) {
      spdlog::warn("connection {}: bad option magic in the handshake; closing", c.index);
      return;
    }
    if (!hs.accept_option(h)) {
      spdlog::warn(
          "connection {}: option {} with length {} after {} options: over the limits ({} bytes, {} "
          "options); closing",
          c.index, h.option, h.length, hs.options_seen() - 1, kMaxOptionLength, kMaxOptions);
      return;
    }
    if (!recv_until(fd, c.option.data(), h.length, deadline)) return timed_out();
    const auto next = hs.on_option(h.option, std::span<const std::byte>(c.option.data(), h.length));
    auto r = hs.reply();
    if (!r.empty() && !send_until(r)) return timed_out();
    if (next == Handshake::Next::kClose) return;
    in_handshake = next == Handshake::Next::kContinue;
  }

  set_timeout(fd, SO_RCVTIMEO, 0);  // an idle kernel client is normal
  set_timeout(fd, SO_SNDTIMEO, std::min(opt_.reply_timeout_ms, 1000));
  c.rx_begin = c.rx_end = 0;
  c.eof = false;
  transmission(c);
}

// Whether req overlaps a request in slots[0..n) such that their order
// matters (one of them modifies).
static bool conflicts(const std::vector<Slot>& slots, unsigned n, const Request& req) {
  if (req.type == kCmdFlush) return false;
  const std::uint64_t end = req.offset + req.length;
  for (unsigned i = 0; i < n; ++i) {
    const Request& o = slots[i].req;
    if (slots[i].error != 0 || o.type == kCmdFlush) continue;
    if (!modifies(o.type) && !modifies(req.type)) continue;
    if (req.offset < o.offset + o.length && o.offset < end) return true;
  }
  return false;
}

// The reader (this thread) receives a group into one of the connection's two
// group buffers. A small group (under pipeline_bytes of payload) it runs and
// answers itself, as soon as the completer is idle: the QD1 path has no
// thread hand-off. A large one goes to the completer, and the reader goes
// on receiving the next group into the other buffer meanwhile:
// - writes: the completer runs the store and sends the replies, so that the
//   next group's payload arrives while the store takes this one;
// - reads: the reader runs the store itself once the completer has run the
//   previous group through the store, then hands over only the sending, so
//   that the store fills this group while the previous one is being sent.
// Either way groups reach the store one at a time in the order they arrived
// (a group never starts before the previous one has been through the store),
// so overlapping requests, FLUSH and FUA keep the order they had on the wire;
// replies go out in that order too.
void Server::transmission(Connection& c) {
  const std::uint64_t size = store_.size();
  {
    std::lock_guard lk(c.mu);
    c.dead = false;
  }
  c.cur = 0;
  c.header_only = false;
  bool pending = false;  // the completer holds a group
  // Waits for the completer (see wait_completer); false: the connection is over.
  auto settle = [&](bool whole) {
    if (!pending) return true;
    if (whole) pending = false;
    return wait_completer(c, whole);
  };
  for (;;) {
    Group& g = c.group[c.cur];
    unsigned n = 0;
    std::size_t used = 0, read_bytes = 0;
    bool close_after = false;
    while (n < opt_.queue_depth) {
      if (c.avail() < kRequestSize) {
        if (c.eof) {
          close_after = true;
          break;
        }
        const int r = c.fill(n == 0);
        if (r < 0) c.eof = true;
        if (r == 0) break;  // nothing more has arrived: run what we have
        continue;
      }
      Request req;
      if (!parse_request(std::span<const std::byte, kRequestSize>(c.rx.data() + c.rx_begin, kRequestSize),
                         req)) {
        spdlog::warn("connection {}: bad request magic; closing", c.index);
        close_after = true;
        break;
      }
      const int err = validate_request(req, size);
      if (req.type == kCmdDisc && err == 0) {
        c.consume(kRequestSize);
        close_after = true;
        break;
      }
      const bool payload = has_payload(req);
      const std::uint32_t need =
          (err == 0 && (req.type == kCmdRead || req.type == kCmdWrite)) ? req.length : 0;
      if (need > c.payload_bytes) {
        if (n > 0) break;
        c.consume(kRequestSize);
        if (!settle(true)) return;
        if (!large(c, g, req)) return;
        continue;
      }
      if (need > c.payload_bytes - used) break;
      if (n > 0 && err == 0 && conflicts(g.slots, n, req)) break;
      Slot& s = g.slots[n];
      if (n == 0) g.t0_ns = now_ns();
      s.req = req;
      s.error = err;
      s.data = need > 0 ? g.payload + used : nullptr;
      if (must_drop_after(req, err)) {
        // Too long to skip cheaply: answer, then drop the connection.
        c.consume(kRequestSize);
        ++n;
        close_after = true;
        break;
      }
      if (payload) {
        if (n > 0 && c.avail() < kRequestSize + req.length) break;  // not all here yet
        c.consume(kRequestSize);
        if (req.length > c.avail() && req.length >= kRxBytes / 2) c.header_only = true;
        if (!c.take_payload(s.data, req.length)) {  // gone mid-payload: nothing written
          settle(true);
          return;
        }
      } else {
        c.consume(kRequestSize);
      }
      used += need;
      if (req.type == kCmdRead) read_bytes += need;
      ++n;
      if (req.type == kCmdFlush) break;
    }
    if (n > 0) {
      g.n = n;
      if (close_after || used < opt_.pipeline_bytes) {
        if (!settle(true)) return;
        execute(c, g);
        if (!send_replies(c, g)) return;
      } else if (read_bytes * 2 >= used) {
        if (!settle(false)) return;
        execute(c, g);
        if (!settle(true)) return;
        hand_over(c, g, true);
        pending = true;
        c.cur ^= 1;
      } else {
        if (!settle(true)) return;
        hand_over(c, g, false);
        pending = true;
        c.cur ^= 1;
      }
    }
    if (close_after) {
      settle(true);
      return;
    }
  }
}

void Server::execute(Connection& c, Group& g) {
  tsan::happens_after(&client_order);
  const unsigned n = g.n;
  unsigned k = 0;
  bool fua = false;
  std::uint64_t reqs[5] = {}, bytes[5] = {};
  const std::uint64_t depth = inflight_.fetch_add(n, std::memory_order_relaxed) + n;
  for (std::uint64_t m = inflight_max_.load(std::memory_order_relaxed);
       depth > m && !inflight_max_.compare_exchange_weak(m, depth, std::memory_order_relaxed);) {
  }
  for (unsigned i = 0; i < n; ++i) {
    Slot& s = g.slots[i];
    if (s.error != 0) continue;
    const auto op = static_cast<unsigned>(op_of(s.req.type));
    reqs[op]++;
    bytes[op] += s.req.type == kCmdFlush ? 0 : s.req.length;
    IoRequest& io = g.ios[k];
    io.op = op_of(s.req.type);
    io.offset = s.req.offset;
    io.length = s.req.type == kCmdFlush ? 0 : s.req.length;
    io.data = s.data;
    io.error = 0;
    g.io_slot[k++] = i;
    if ((s.req.flags & kCmdFlagFua) != 0 && modifies(s.req.type)) fua = true;
  }
  if (k > 0) run_batch(c, g.ios.data(), k);
  for (unsigned j = 0; j < k; ++j) g.slots[g.io_slot[j]].error = g.ios[j].error;
  if (fua) {
    const int e = store_.flush();
    if (e != 0)
      for (unsigned i = 0; i < n; ++i)
        if (g.slots[i].error == 0 && (g.slots[i].req.flags & kCmdFlagFua) != 0) g.slots[i].error = e;
  }
  requests_.fetch_add(n, std::memory_order_relaxed);
  for (int i = 0; i < 5; ++i) {
    if (reqs[i] == 0) continue;
    op_requests_[i].fetch_add(reqs[i], std::memory_order_relaxed);
    op_bytes_[i].fetch_add(bytes[i], std::memory_order_relaxed);
  }
}

bool Server::send_replies(Connection& c, Group& g) {
  std::size_t k = 0;
  for (unsigned i = 0; i < g.n; ++i) {
    Slot& s = g.slots[i];
    serialize_simple_reply(wire_error(s.error), s.req.cookie,
                           std::span<std::byte, kSimpleReplySize>(s.reply, kSimpleReplySize));
    g.iov[k++] = {s.reply, kSimpleReplySize};
    if (s.req.type == kCmdRead && s.error == 0) g.iov[k++] = {s.data, s.req.length};
  }
  const bool sent = send_iov(c.fd, g.iov.data(), k, opt_.reply_timeout_ms);
  latency_.record(static_cast<std::uint64_t>(now_ns() - g.t0_ns), g.n);
  inflight_.fetch_sub(g.n, std::memory_order_relaxed);
  if (sent) return true;
  spdlog::warn("connection {}: client did not take its replies within {} ms; dropping it", c.index,
               opt_.reply_timeout_ms);
  return false;
}

// A READ or WRITE longer than the payload buffer (the request header is
// consumed, the request valid): streamed through the buffer in chunks.
bool Server::large(Connection& c, Group& g, const Request& req) {
  tsan::happens_after(&client_order);
  const std::size_t chunk_max = c.payload_bytes;
  std::byte reply[kSimpleReplySize];
  IoRequest& io = g.ios[0];
  if (req.type == kCmdWrite) {
    int err = 0;
    for (std::uint64_t done = 0; done < req.length;) {
      const auto chunk = static_cast<std::uint32_t>(std::min<std::uint64_t>(req.length - done, chunk_max));
      if (!c.take_payload(g.payload, chunk)) return false;
      if (err == 0) {
        io = {Op::write, req.offset + done, chunk, g.payload, 0};
        run_batch(c, &io, 1);
        err = io.error;
      }
      done += chunk;
    }
    if (err == 0 && (req.flags & kCmdFlagFua) != 0) err = store_.flush();
    requests_++;
    serialize_simple_reply(wire_error(err), req.cookie,
                           std::span<std::byte, kSimpleReplySize>(reply, kSimpleReplySize));
    return send_bytes(c.fd, reply, sizeof reply, opt_.reply_timeout_ms);
  }
  // READ: the first chunk decides the reply's error; a later failure can
  // only be reported by dropping the connection (never wrong data).
  requests_++;
  for (std::uint64_t done = 0; done < req.length;) {
    const auto chunk = static_cast<std::uint32_t>(std::min<std::uint64_t>(req.length - done, chunk_max));
    io = {Op::read, req.offset + done, chunk, g.payload, 0};
    run_batch(c, &io, 1);
    if (io.error != 0) {
      if (done > 0) {
        spdlog::error(
            "connection {}: store error {} in the middle of a {}-byte read; dropping the connection", c.index,
            io.error, req.length);
        return false;
      }
      serialize_simple_reply(wire_error(io.error), req.cookie,
                             std::span<std::byte, kSimpleReplySize>(reply, kSimpleReplySize));
      return send_bytes(c.fd, reply, sizeof reply, opt_.reply_timeout_ms);
    }
    std::size_t k = 0;
    if (done == 0) {
      serialize_simple_reply(0, req.cookie, std::span<std::byte, kSimpleReplySize>(reply, kSimpleReplySize));
      g.iov[k++] = {reply, sizeof reply};
    }
    g.iov[k++] = {g.payload, chunk};
    if (!send_iov(c.fd, g.iov.data(), k, opt_.reply_timeout_ms)) return false;
    done += chunk;
  }
  return true;
}

}  // namespace tierswap::vram
