#include "backends/vram/exporter.hpp"

#include <fmt/format.h>
#include <sched.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <thread>

#include "backends/vram/nbd_server.hpp"
#include "backends/vram/process_safety.hpp"
#include "backends/vram/store_factory.hpp"

#ifndef TIERSWAP_VERSION
#define TIERSWAP_VERSION "0.0.0"
#endif

namespace tierswap::vram {

Result<std::uint64_t> parse_size(std::string_view text) {
  auto not_a_size = [&] {
    return fail(EINVAL, "\"" + std::string(text) + "\" is not a size (try 4096, 512M, 8G)");
  };
  std::string_view t = text;
  if (t.empty() || t[0] < '0' || t[0] > '9') return not_a_size();
  std::uint64_t v = 0;
  std::size_t i = 0;
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    if (v > (std::numeric_limits<std::uint64_t>::max() - 9) / 10)
      return fail(ERANGE, "\"" + std::string(text) + "\" is too large");
    v = v * 10 + static_cast<unsigned>(t[i] - '0');
  }
  std::string_view suffix = t.substr(i);
  unsigned shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      case 't':
      case 'T':
        shift = 40;
        break;
      case 'b':
      case 'B':
        shift = 0;
        break;
      default:
        return not_a_size();
    }
    std::string_view rest = suffix.substr(1);
    if (shift != 0 && !(rest.empty() || rest == "B" || rest == "iB" || rest == "b")) return not_a_size();
    if (shift == 0 && !rest.empty()) return not_a_size();
  }
  if (shift != 0 && v > (std::numeric_limits<std::uint64_t>::max() >> shift))
    return fail(ERANGE, "\"" + std::string(text) + "\" is too large");
  return v << shift;
}

std::string usage_text() {
  return "Usage: tierswap-nbd --socket PATH --size SIZE --store host|cuda [options]\n"
         "       tierswap-nbd --fd N [--fd N ...] --size SIZE --store host|cuda [options]\n"
         "Serve one NBD export (the tierswap VRAM tier) over Unix sockets.\n"
         "\n"
         "  --socket PATH      listen on PATH (mode 0600; its directory must be 0700)\n"
         "  --fd N             serve the already-connected socket N (repeatable: one\n"
         "                     connection each, e.g. socketpairs from the daemon; with no\n"
         "                     --socket the exporter exits once every one has ended)\n"
         "  --size SIZE        export size, a multiple of 512 (4096, 512M, 8G)\n"
         "  --store KIND       host (RAM) or cuda (GPU memory)\n"
         "  --device N|UUID    GPU for --store cuda (default: the first)\n"
         "  --connections N    clients attached at once (default: one per CPU, up to 16,\n"
         "                     and at least the number of --fd)\n"
         "  --buffer SIZE      payload buffer per connection (default 1M)\n"
         "  --pipeline SIZE|off|auto  complete groups of at least SIZE payload bytes on\n"
         "                     a second thread per connection while the next group is\n"
         "                     received (two payload buffers per connection); auto,\n"
         "                     the default: 256K with 8 or more CPUs, else off\n"
         "  --reply-timeout MS drop a client that does not read its replies (default 30000)\n"
         "  --handshake-timeout MS  drop a client whose whole handshake takes longer\n"
         "                     (default 10000)\n"
         "  --no-mlock         do not lock memory (tests only: a swap exporter must not swap)\n"
         "  --force            exit on SIGTERM/SIGINT even while clients are attached\n"
         "  --help, --version\n"
         "\n"
         "Exit status: 0 stopped on request, 1 could not start or serve, 2 bad command line.\n";
}

std::string version_text() {
  return fmt::format("tierswap-nbd {} (cuda={})\n", TIERSWAP_VERSION, have_cuda_store() ? "yes" : "no");
}

// Overlapping the receive of one group with the store's work on the last
// needs a spare core per connection: measured on a 16-core H200 machine it
// gained 15% on 1 MiB writes and 8% on 4 KiB 8x32, on a loaded 2-core machine
// it lost 30-50% (bench/results/nbd-gpu.md, nbd-cpu.md).
std::size_t auto_pipeline_bytes() {
  return std::thread::hardware_concurrency() >= 8 ? (256U << 10) : SIZE_MAX;
}

// One connection slot per CPU this process may run on (the Linux client
// opens one connection per hardware queue, one queue per CPU), up to 16.
unsigned default_connections() {
  cpu_set_t set;
  CPU_ZERO(&set);
  const unsigned n =
      ::sched_getaffinity(0, sizeof set, &set) == 0 ? static_cast<unsigned>(CPU_COUNT(&set)) : 1U;
  return std::clamp(n, 1U, 16U);
}

Result<ExporterOptions> parse_command_line(std::span<const std::string_view> args) {
  ExporterOptions o;
  o.pipeline_bytes = auto_pipeline_bytes();
  o.connections = default_connections();
  bool have_connections = false;
  auto number = [](std::string_view opt, std::string_view v, std::uint64_t max) -> Result<std::uint64_t> {
    std::uint64_t n = 0;
    if (v.empty()) return fail(EINVAL, std::string(opt) + ": \"\" is not a number");
    for (char ch : v) {
      if (ch < '0' || ch > '9' || n > max / 10)
        return fail(EINVAL, std::string(opt) + ": \"" + std::string(v) + "\" is not a number up to " +
                                std::to_string(max));
      n = n * 10 + static_cast<unsigned>(ch - '0');
    }
    if (n > max)
      return fail(EINVAL, std::string(opt) + ": " + std::string(v) + " is above " + std::to_string(max));
    return n;
  };
  bool have_size = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    std::string_view value;
    const bool takes_value = a == "--socket" || a == "--size" || a == "--store" || a == "--device" ||
                             a == "--connections" || a == "--fd" || a == "--buffer" || a == "--pipeline" ||
                             a == "--reply-timeout" || a == "--handshake-timeout" ||
                             a == "--test-fail-offset";
    if (takes_value) {
      if (i + 1 >= args.size()) return fail(EINVAL, std::string(a) + " needs a value (see --help)");
      value = args[++i];
    }
    if (a == "--help" || a == "-h") {
      o.help = true;
    } else if (a == "--version") {
      o.version = true;
    } else if (a == "--socket") {
      if (value.empty()) return fail(EINVAL, "--socket needs a path");
      o.socket = std::string(value);
    } else if (a == "--size") {
      auto s = parse_size(value);
      if (!s) return wrap(s.error(), "--size");
      if (*s == 0 || *s % 512 != 0)
        return fail(EINVAL, "--size " + std::string(value) + ": must be a non-zero multiple of 512 bytes");
      o.size = *s;
      have_size = true;
    } else if (a == "--store") {
      o.store = std::string(value);
      if (o.store != "host" && o.store != "cuda" && o.store != "host-batch")
        return fail(EINVAL, "--store " + o.store + ": unknown store (use host or cuda)");
    } else if (a == "--device") {
      o.device = std::string(value);
    } else if (a == "--connections") {
      auto n = number(a, value, 1024);
      if (!n) return std::unexpected(n.error());
      if (*n == 0) return fail(EINVAL, "--connections must be at least 1");
      o.connections = static_cast<unsigned>(*n);
      have_connections = true;
    } else if (a == "--fd") {
      auto n = number(a, value, 1 << 20);
      if (!n) return std::unexpected(n.error());
      o.fds.push_back(static_cast<int>(*n));
    } else if (a == "--buffer") {
      auto s = parse_size(value);
      if (!s) return wrap(s.error(), "--buffer");
      if (*s < (64U << 10) || *s > (1ULL << 30))
        return fail(EINVAL, "--buffer " + std::string(value) + ": must be between 64K and 1G");
      o.buffer_bytes = *s;
    } else if (a == "--pipeline") {
      if (value == "off") {
        o.pipeline_bytes = SIZE_MAX;
      } else if (value == "auto") {
        o.pipeline_bytes = auto_pipeline_bytes();
      } else {
        auto s = parse_size(value);
        if (!s) return wrap(s.error(), "--pipeline");
        o.pipeline_bytes = *s;
      }
    } else if (a == "--reply-timeout") {
      auto n = number(a, value, 3600000);
      if (!n) return std::unexpected(n.error());
      if (*n == 0) return fail(EINVAL, "--reply-timeout must be at least 1 ms");
      o.reply_timeout_ms = static_cast<int>(*n);
    } else if (a == "--handshake-timeout") {
      auto n = number(a, value, 3600000);
      if (!n) return std::unexpected(n.error());
      if (*n == 0) return fail(EINVAL, "--handshake-timeout must be at least 1 ms");
      o.handshake_timeout_ms = static_cast<int>(*n);
    } else if (a == "--test-fail-offset") {
      auto s = parse_size(value);
      if (!s) return wrap(s.error(), "--test-fail-offset");
      o.fail_offset = *s;
    } else if (a == "--no-mlock") {
      o.mlock = false;
    } else if (a == "--force") {
      o.force = true;
    } else {
      return fail(EINVAL, "unknown argument \"" + std::string(a) + "\" (see --help)");
    }
  }
  if (o.help || o.version) return o;
  if (o.socket.empty() && o.fds.empty()) return fail(EINVAL, "give --socket PATH or --fd N (see --help)");
  if (!have_size) return fail(EINVAL, "you must give --size SIZE (e.g. --size 8G)");
  if (o.store.empty()) return fail(EINVAL, "you must give --store host or --store cuda");
  if (!o.device.empty() && o.store != "cuda") return fail(EINVAL, "--device applies only to --store cuda");
  if (!have_connections)
    o.connections = std::max<unsigned>(o.connections, static_cast<unsigned>(o.fds.size()));
  if (o.fds.size() > o.connections)
    return fail(EINVAL, "--fd given " + std::to_string(o.fds.size()) + " times but --connections is " +
                            std::to_string(o.connections));
  return o;
}

int run_exporter(const ExporterOptions& o) {
  // Signals are taken synchronously by this thread; block them before any
  // other thread exists so that every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (o.mlock) {
    if (auto r = lock_all_memory(); !r) {
      spdlog::error("{}", r.error().describe());
      return kExitFailure;
    }
  } else {
    spdlog::warn("--no-mlock: the exporter itself may be swapped out (tests only)");
  }
  if (auto r = protect_from_oom(); !r)
    spdlog::warn("cannot protect the exporter from the OOM killer: {}", r.error().describe());

  StoreOptions so;
  so.kind = o.store;
  so.size = o.size;
  so.device = o.device;
  so.lock = o.mlock;
  so.fail_offset = o.fail_offset;
  std::string report;
  auto store = make_store(so, report);
  if (!store) {
    spdlog::error("{}", store.error().describe());
    return kExitFailure;
  }
  if (!report.empty()) spdlog::info("{}", report);

  ServerOptions opt;
  opt.socket_path = o.socket;
  opt.fds = o.fds;
  opt.connections = o.connections;
  opt.buffer_bytes = o.buffer_bytes;
  opt.pipeline_bytes = o.pipeline_bytes;
  opt.reply_timeout_ms = o.reply_timeout_ms;
  opt.handshake_timeout_ms = o.handshake_timeout_ms;
  opt.lock_stacks = o.mlock;
  Server server(**store, opt);
  if (auto r = server.start(); !r) {
    spdlog::error("{}", r.error().describe());
    return kExitFailure;
  }

  const timespec tick{0, 200 * 1000 * 1000};
  for (;;) {
    siginfo_t info{};
    const int sig = sigtimedwait(&set, &info, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      const unsigned n = server.clients();
      if (n > 0 && !o.force) {
        spdlog::warn(
            "refusing {} from pid {}: {} client(s) attached (a swap device whose server exits "
            "kills its users); detach them first, or run with --force",
            strsignal(sig), info.si_pid, n);
        continue;
      }
      spdlog::info("{} received; stopping ({} client(s) attached)", strsignal(sig), n);
      break;
    }
    if (sig == SIGHUP) continue;
    if (server.finished()) {
      spdlog::info("every --fd connection has ended; stopping");
      break;
    }
  }
  server.stop();
  if ((*store)->failed()) {
    spdlog::error("the {} store failed while serving", (*store)->name());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace tierswap::vram
