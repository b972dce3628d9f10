// nbd-load: a small libnbd load generator for NBD servers (tierswap-nbd,
// nbdkit). N connections, each with its own thread and QD requests in
// flight (aio), for a fixed time; prints one line:
//   iops=... mbps=... p50_us=... p99_us=... ops=... errors=...
//
//   nbd-load --uri URI [--connections N] [--qd Q] [--bs BYTES]
//            [--pattern randread|randwrite|randrw70|seqread|seqwrite]
//            [--seconds S] [--span BYTES] [--prefill] [--sndbuf BYTES]
//
// --sndbuf: each connection's socket send buffer (nbd+unix URIs only; the
// socket is made here, SO_SNDBUFFORCE as root, and handed to libnbd), for
// seeing how a server does when the client can queue more than the
// default ~208 KiB (tierswapd sets the kernel's sockets the same way).
#include <libnbd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Log-linear latency histogram: 16 sub-buckets per power of two (≤ 6% error).
struct Histogram {
  static constexpr int kSub = 16;
  std::vector<std::uint64_t> b = std::vector<std::uint64_t>(64 * kSub);
  static int index(std::uint64_t ns) {
    if (ns < kSub) return static_cast<int>(ns);
    const int msb = 63 - __builtin_clzll(ns);
    const int sub = static_cast<int>((ns >> (msb - 4)) & (kSub - 1));
    return (msb - 3) * kSub + sub;
  }
  static double value(int i) {
    if (i < kSub) return i;
    const int msb = i / kSub + 3, sub = i % kSub;
    return std::ldexp(1.0 + (sub + 0.5) / kSub, msb);
  }
  void add(std::uint64_t ns) { ++b[static_cast<std::size_t>(index(ns))]; }
  void merge(const Histogram& o) {
    for (std::size_t i = 0; i < b.size(); ++i) b[i] += o.b[i];
  }
  double percentile(double p) const {
    std::uint64_t total = 0;
    for (auto v : b) total += v;
    if (total == 0) return 0;
    const auto want = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
      seen += b[i];
      if (seen >= want) return value(static_cast<int>(i));
    }
    return 0;
  }
};

struct Options {
  std::string uri;
  int connections = 1, qd = 1;
  std::uint64_t bs = 4096, span = 0;
  std::string pattern = "randread";
  double seconds = 5;
  bool prefill = false;
};

struct Slot {
  Clock::time_point start;
  std::atomic<bool> done{true};
  std::byte* buf = nullptr;
  int error = 0;
};

int on_complete(void* user, int* error) {
  auto* s = static_cast<Slot*>(user);
  s->error = *error;
  s->done.store(true, std::memory_order_release);
  return 1;  // retire the command
}

struct Result {
  std::uint64_t ops = 0, bytes = 0, errors = 0;
  Histogram hist;
};

std::uint64_t g_sndbuf = 0;  // --sndbuf; 0: the system's default

// A connected AF_UNIX socket to the nbd+unix URI's socket with the send
// buffer asked for; -1 with a message when it cannot be made.
int unix_socket_with_sndbuf(const std::string& uri) {
  const std::string key = "socket=";
  const auto at = uri.find(key);
  if (!uri.starts_with("nbd+unix:") || at == std::string::npos) {
    std::fprintf(stderr, "nbd-load: --sndbuf needs an nbd+unix:///?socket=PATH URI, not %s\n", uri.c_str());
    return -1;
  }
  const std::string path = uri.substr(at + key.size(), uri.find('&', at) - at - key.size());
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return -1;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int v = static_cast<int>(g_sndbuf);
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) != 0)
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::fprintf(stderr, "nbd-load: %s: %s\n", path.c_str(), std::strerror(errno));
    ::close(fd);
    return -1;
  }
  return fd;
}

nbd_handle* connect(const std::string& uri) {
  nbd_handle* h = nbd_create();
  if (h != nullptr && g_sndbuf > 0) {
    const int fd = unix_socket_with_sndbuf(uri);
    if (fd < 0) std::exit(1);
    if (nbd_connect_socket(h, fd) != 0) {
      std::fprintf(stderr, "nbd-load: %s: %s\n", uri.c_str(), nbd_get_error());
      std::exit(1);
    }
    return h;
  }
  if (h == nullptr || nbd_connect_uri(h, uri.c_str()) != 0) {
    std::fprintf(stderr, "nbd-load: %s: %s\n", uri.c_str(), nbd_get_error());
    std::exit(1);
  }
  return h;
}

void worker(const Options& o, int id, std::uint64_t size, Clock::time_point end, Result& out) {
  nbd_handle* h = connect(o.uri);
  std::vector<Slot> slots(static_cast<std::size_t>(o.qd));
  auto* mem = static_cast<std::byte*>(std::aligned_alloc(4096, o.bs * static_cast<std::size_t>(o.qd)));
  std::mt19937_64 rng(0x9e3779b97f4a7c15ULL * static_cast<unsigned>(id + 1));
  for (std::size_t i = 0; i < o.bs * static_cast<std::size_t>(o.qd); ++i) mem[i] = std::byte(rng());
  for (int i = 0; i < o.qd; ++i)
    slots[static_cast<std::size_t>(i)].buf = mem + o.bs * static_cast<std::size_t>(i);

  const std::uint64_t span = std::min(o.span ? o.span : size, size);
  const std::uint64_t blocks = span / o.bs;
  // Sequential: each connection walks its own share of the span.
  const std::uint64_t share = std::max<std::uint64_t>(blocks / static_cast<std::uint64_t>(o.connections), 1);
  std::uint64_t seq = share * static_cast<std::uint64_t>(id) % blocks;
  const bool seq_mode = o.pattern.rfind("seq", 0) == 0;

  auto issue = [&](Slot& s) {
    std::uint64_t blk;
    if (seq_mode) {
      blk = seq;
      if (++seq >= share * static_cast<std::uint64_t>(id + 1) || seq >= blocks)
        seq = share * static_cast<std::uint64_t>(id) % blocks;
    } else {
      blk = rng() % blocks;
    }
    bool write = o.pattern == "randwrite" || o.pattern == "seqwrite";
    if (o.pattern == "randrw70") write = rng() % 100 >= 70;
    s.done.store(false, std::memory_order_relaxed);
    s.start = Clock::now();
    const nbd_completion_callback cb{on_complete, &s, nullptr};
    const int64_t c = write ? nbd_aio_pwrite(h, s.buf, o.bs, blk * o.bs, cb, 0)
                            : nbd_aio_pread(h, s.buf, o.bs, blk * o.bs, cb, 0);
    if (c < 0) {
      std::fprintf(stderr, "nbd-load: %s\n", nbd_get_error());
      std::exit(1);
    }
  };

  for (auto& s : slots) issue(s);
  for (;;) {
    if (nbd_poll(h, -1) < 0) {
      std::fprintf(stderr, "nbd-load: poll: %s\n", nbd_get_error());
      std::exit(1);
    }
    const auto now = Clock::now();
    const bool stop = now >= end;
    for (auto& s : slots) {
      if (!s.done.load(std::memory_order_acquire) || s.buf == nullptr) continue;
      out.hist.add(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - s.start).count()));
      ++out.ops;
      out.bytes += o.bs;
      if (s.error != 0) ++out.errors;
      if (stop) {
        s.buf = nullptr;  // retired
      } else {
        issue(s);
      }
    }
    if (stop && nbd_aio_in_flight(h) == 0) break;
  }
  nbd_shutdown(h, 0);
  nbd_close(h);
  std::free(mem);
}

void prefill(const Options& o, std::uint64_t size) {
  nbd_handle* h = connect(o.uri);
  const std::uint64_t span = std::min(o.span ? o.span : size, size);
  const std::size_t chunk = 1 << 20;
  std::vector<std::byte> buf(chunk);
  std::mt19937_64 rng(1);
  for (auto& b : buf) b = std::byte(rng());
  for (std::uint64_t off = 0; off < span; off += chunk) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, span - off));
    if (nbd_pwrite(h, buf.data(), n, off, 0) != 0) {
      std::fprintf(stderr, "nbd-load: prefill: %s\n", nbd_get_error());
      std::exit(1);
    }
  }
  nbd_shutdown(h, 0);
  nbd_close(h);
}

std::uint64_t parse_bytes(const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  switch (*end) {
    case 'k':
    case 'K':
      v *= 1024;
      break;
    case 'm':
    case 'M':
      v *= 1024 * 1024;
      break;
    case 'g':
    case 'G':
      v *= 1024.0 * 1024 * 1024;
      break;
    default:
      break;
  }
  return static_cast<std::uint64_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "nbd-load: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--uri")
      o.uri = next();
    else if (a == "--connections")
      o.connections = std::atoi(next());
    else if (a == "--qd")
      o.qd = std::atoi(next());
    else if (a == "--bs")
      o.bs = parse_bytes(next());
    else if (a == "--span")
      o.span = parse_bytes(next());
    else if (a == "--pattern")
      o.pattern = next();
    else if (a == "--seconds")
      o.seconds = std::atof(next());
    else if (a == "--prefill")
      o.prefill = true;
    else if (a == "--sndbuf")
      g_sndbuf = parse_bytes(next());
    else {
      std::fprintf(stderr,
                   "usage: nbd-load --uri URI [--connections N] [--qd Q] [--bs BYTES] "
                   "[--pattern randread|randwrite|randrw70|seqread|seqwrite] [--seconds S] "
                   "[--span BYTES] [--prefill] [--sndbuf BYTES]\n");
      return 2;
    }
  }
  if (o.uri.empty() || o.connections < 1 || o.qd < 1 || o.bs == 0) {
    std::fprintf(stderr, "nbd-load: need --uri, and positive --connections, --qd, --bs\n");
    return 2;
  }
  nbd_handle* probe = connect(o.uri);
  const auto size = static_cast<std::uint64_t>(nbd_get_size(probe));
  nbd_shutdown(probe, 0);
  nbd_close(probe);
  if (o.prefill) prefill(o, size);

  std::vector<Result> results(static_cast<std::size_t>(o.connections));
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  for (int i = 0; i < o.connections; ++i)
    threads.emplace_back(worker, std::cref(o), i, size, end, std::ref(results[static_cast<std::size_t>(i)]));
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  Result total;
  for (auto& r : results) {
    total.ops += r.ops;
    total.bytes += r.bytes;
    total.errors += r.errors;
    total.hist.merge(r.hist);
  }
  std::printf("iops=%.0f mbps=%.1f p50_us=%.1f p99_us=%.1f ops=%llu errors=%llu\n",
              static_cast<double>(total.ops) / secs, static_cast<double>(total.bytes) / secs / 1e6,
              total.hist.percentile(0.50) / 1e3, total.hist.percentile(0.99) / 1e3,
              static_cast<unsigned long long>(total.ops), static_cast<unsigned long long>(total.errors));
  return total.errors == 0 ? 0 : 1;
}
