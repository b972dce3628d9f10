#include "backends/vram/exporter.hpp"

#include <fmt/format.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <thread>

#include "backends/vram/capabilities.hpp"
#include "backends/vram/control_server.hpp"
#include "backends/vram/migrating_store.hpp"
#include "backends/vram/nbd_server.hpp"
#include "backends/vram/process_safety.hpp"
#include "backends/vram/store_factory.hpp"
#include "backends/vram/unix_listener.hpp"
#include "common/refusal.hpp"

#ifndef TIERSWAP_VERSION
#define TIERSWAP_VERSION "0.0.0"
#endif

namespace tierswap::vram {

Result<std::uint64_t> parse_size(std::string_view text) {
  auto not_a_size = [&] {
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "\"" + std::string(text) + "\" is not a size (try 4096, 512M, 8G)");
  };
  std::string_view t = text;
  if (t.empty() || t[0] < '0' || t[0] > '9') return not_a_size();
  std::uint64_t v = 0;
  std::size_t i = 0;
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    if (v > (std::numeric_limits<std::uint64_t>::max() - 9) / 10)
      return refusal(ErrorKind::invalid_argument, ERANGE, "\"" + std::string(text) + "\" is too large");
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
    return refusal(ErrorKind::invalid_argument, ERANGE, "\"" + std::string(text) + "\" is too large");
  return v << shift;
}

namespace {

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

// A size option's value through parse_size(); a CLI11 validation error
// naming the option otherwise.
std::uint64_t size_value(const std::string& option, const std::string& value) {
  auto s = parse_size(value);
  if (!s) throw CLI::ValidationError(option, s.error().message);
  return *s;
}

// Everything tierswap-nbd accepts. `o` receives the values.
void describe(CLI::App& app, ExporterOptions& o) {
  app.set_help_flag("-h,--help", "print this help and exit");
  app.add_flag("--version", o.version, "print the version and the features built in, and exit");
  app.add_option("--socket", o.socket, "listen on PATH (mode 0600; its directory must be 0700, not a link)")
      ->type_name("PATH");
  app.add_option_function<std::vector<int>>(
         "--fd", [&o](const std::vector<int>& fds) { o.fds = fds; },
         "serve the already-connected socket N (repeatable: one connection each, e.g. "
         "socketpairs handed over by the daemon; with no --socket the exporter exits once "
         "every one has ended)")
      ->type_name("N")
      ->check(CLI::Range(0, 1 << 20))
      ->allow_extra_args(false);
  app.add_option_function<std::string>(
         "--size",
         [&o](const std::string& v) {
           o.size = size_value("--size", v);
           if (o.size == 0 || o.size % 512 != 0)
             throw CLI::ValidationError("--size", v + ": must be a non-zero multiple of 512 bytes");
         },
         "export size, a multiple of 512 (4096, 512M, 8G)")
      ->type_name("SIZE");
  app.add_option("--store", o.store, "host (RAM) or cuda (GPU memory)")
      ->type_name("KIND")
      ->check(CLI::Validator(
          [](std::string& v) {
            return v == "host" || v == "cuda" || v == "host-batch" ? std::string()
                                                                   : v + ": unknown store (use host or cuda)";
          },
          ""));
  app.add_option("--device", o.device, "GPU for --store cuda (default: the first)")->type_name("N|UUID");
  app.add_option("--connections", o.connections,
                 "clients attached at once (default: one per CPU, up to 16, and at least the number of --fd)")
      ->type_name("N")
      ->check(CLI::Range(1, 1024));
  app.add_option_function<std::string>(
         "--buffer",
         [&o](const std::string& v) {
           o.buffer_bytes = size_value("--buffer", v);
           if (o.buffer_bytes < (64U << 10) || o.buffer_bytes > (1ULL << 30))
             throw CLI::ValidationError("--buffer", v + ": must be between 64K and 1G");
         },
         "payload buffer per connection (default 1M)")
      ->type_name("SIZE");
  app.add_option_function<std::string>(
         "--pipeline",
         [&o](const std::string& v) {
           if (v == "off")
             o.pipeline_bytes = SIZE_MAX;
           else if (v == "auto")
             o.pipeline_bytes = auto_pipeline_bytes();
           else
             o.pipeline_bytes = size_value("--pipeline", v);
         },
         "complete groups of at least SIZE payload bytes on a second thread per connection while the "
         "next group is received (two payload buffers per connection); auto, the default: 256K with 8 "
         "or more CPUs, else off")
      ->type_name("SIZE|off|auto");
  app.add_option("--reply-timeout", o.reply_timeout_ms,
                 "drop a client that does not read its replies for MS milliseconds (default 30000)")
      ->type_name("MS")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--handshake-timeout", o.handshake_timeout_ms,
                 "drop a client whose whole handshake takes longer than MS milliseconds (default 10000)")
      ->type_name("MS")
      ->check(CLI::Range(1, 3600000));
  app.add_flag_callback(
      "--no-mlock", [&o] { o.mlock = false; },
      "do not lock memory (tests only: a swap exporter must not swap)");
  app.add_option_function<std::string>(
         "--chunk",
         [&o](const std::string& v) {
           o.chunk_bytes = size_value("--chunk", v);
           if (o.chunk_bytes < (1U << 20) || o.chunk_bytes % (1U << 20) != 0)
             throw CLI::ValidationError("--chunk", v + ": must be a multiple of 1M (e.g. 64M)");
         },
         "allocate the export in chunks of SIZE, each released on its own when evacuated (default 64M)")
      ->type_name("SIZE");
  app.add_option_function<std::string>(
         "--spill",
         [&o](const std::string& v) {
           if (v != "lz4" && !v.starts_with("lz4:") && !(v.starts_with("file:/") && v.size() > 6))
             throw CLI::ValidationError(
                 "--spill", v + ": use lz4 (compressed RAM), lz4:N (N: acceleration, 1 best ratio .. 65537) "
                                "or file:/PATH (a new file)");
           o.spill = v;
         },
         "where evacuated chunks go: lz4 (compressed RAM; lz4:N sets lz4's acceleration, e.g. lz4:4 "
         "moves faster at a slightly lower ratio) or file:/PATH (created, must not exist)")
      ->type_name("lz4|file:PATH");
  app.add_option("--control-fd", o.control_fd,
                 "serve the control channel (line-based JSON: stats, evacuate, promote, progress, cancel) "
                 "on the connected socket N")
      ->type_name("N")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--control-socket", o.control_socket,
                 "also serve the control channel on a Unix socket at PATH (mode 0600; its directory "
                 "must be 0700 and not a link; created 0700 when missing), which a restarted daemon "
                 "reconnects to; removed when the exporter exits")
      ->type_name("PATH");
  app.add_option("--movers", o.movers,
                 "chunks moved at once by evacuate/promote (default: with --spill lz4 half the CPUs, 2 to 8; "
                 "with a file spill 2)")
      ->type_name("N")
      ->check(CLI::Range(1, 64));
  app.add_flag("--force", o.force, "exit on SIGTERM/SIGINT even while clients are attached");
  app.footer(
      "Usage: tierswap-nbd --socket PATH --size SIZE --store host|cuda [options]\n"
      "       tierswap-nbd --fd N [--fd N ...] --size SIZE --store host|cuda [options]\n"
      "\n"
      "Exit status: 0 stopped on request, 1 could not start or serve, 2 bad command line.");
}

}  // namespace

std::string usage_text(const ExtraOptions& extra) {
  CLI::App app{"Serve one NBD export (the tierswap VRAM tier) over Unix sockets.", "tierswap-nbd"};
  ExporterOptions o;
  describe(app, o);
  if (extra) extra(app);
  return app.help();
}

std::string version_text(bool test_hooks) {
  return fmt::format("tierswap-nbd {} cuda={} test-hooks={}\n", TIERSWAP_VERSION,
                     have_cuda_store() ? "yes" : "no", test_hooks ? "yes" : "no");
}

Result<ExporterOptions> parse_command_line(std::span<const std::string_view> args,
                                           const ExtraOptions& extra) {
  ExporterOptions o;
  o.pipeline_bytes = auto_pipeline_bytes();
  o.connections = 0;  // not given
  CLI::App app{"Serve one NBD export (the tierswap VRAM tier) over Unix sockets.", "tierswap-nbd"};
  describe(app, o);
  if (extra) extra(app);
  // CLI11 takes the arguments last first.
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp&) {
    o.help = true;
    return o;
  } catch (const CLI::ParseError& e) {
    return refusal(ErrorKind::invalid_argument, EINVAL, std::string(e.what()) + " (see --help)");
  }
  if (o.help || o.version) return o;
  if (o.socket.empty() && o.fds.empty())
    return refusal(ErrorKind::invalid_argument, EINVAL, "give --socket PATH or --fd N (see --help)");
  if (o.size == 0)
    return refusal(ErrorKind::invalid_argument, EINVAL, "you must give --size SIZE (e.g. --size 8G)");
  if (!o.control_socket.empty() && !o.control_socket.starts_with("/"))
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "--control-socket " + o.control_socket + ": give an absolute path");
  if (o.store.empty())
    return refusal(ErrorKind::invalid_argument, EINVAL, "you must give --store host or --store cuda");
  if (!o.device.empty() && o.store != "cuda")
    return refusal(ErrorKind::invalid_argument, EINVAL, "--device applies only to --store cuda");
  if (o.connections == 0)
    o.connections = std::max<unsigned>(default_connections(), static_cast<unsigned>(o.fds.size()));
  if (o.fds.size() > o.connections)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "--fd given " + std::to_string(o.fds.size()) + " times but --connections is " +
                       std::to_string(o.connections));
  return o;
}

int run_exporter(const ExporterOptions& o, const StoreWrapper& wrap) {
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
  so.chunk_bytes = o.chunk_bytes;
  std::string report;
  auto store = make_store(so, report);
  if (!store) {
    spdlog::error("{}", store.error().describe());
    return kExitFailure;
  }
  if (!report.empty()) spdlog::info("{}", report);
  if (wrap) *store = wrap(std::move(*store));

  // With a spill store the export is served through a MigratingStore, which
  // can move its chunks out and back while serving.
  std::unique_ptr<MigratingStore> migrating;
  if (!o.spill.empty()) {
    auto* chunked = dynamic_cast<ChunkedStore*>(store->get());
    if (chunked == nullptr) {
      spdlog::error("--spill: the {} store cannot release its memory in chunks", (*store)->name());
      return kExitFailure;
    }
    auto spill = make_spill(o.spill, chunked->size());
    if (!spill) {
      spdlog::error("{}", spill.error().describe());
      return kExitFailure;
    }
    spdlog::info("{}; {} chunks of {} bytes", (*spill)->describe(), chunked->chunk_count(),
                 chunked->chunk_bytes());
    MoverOptions mo;
    mo.workers = o.movers > 0 ? o.movers : default_movers(o.spill);
    migrating = std::make_unique<MigratingStore>(*chunked, std::move(*spill), mo);
  }
  BlockStore& served = migrating ? static_cast<BlockStore&>(*migrating) : **store;

  ServerOptions opt;
  opt.socket_path = o.socket;
  opt.fds = o.fds;
  opt.connections = o.connections;
  opt.buffer_bytes = o.buffer_bytes;
  opt.pipeline_bytes = o.pipeline_bytes;
  opt.reply_timeout_ms = o.reply_timeout_ms;
  opt.handshake_timeout_ms = o.handshake_timeout_ms;
  opt.lock_stacks = o.mlock;
  Server server(served, opt);
  if (auto r = server.start(); !r) {
    spdlog::error("{}", r.error().describe());
    return kExitFailure;
  }
  std::unique_ptr<ControlServer> control;
  if (o.control_fd >= 0) {
    control = std::make_unique<ControlServer>(o.control_fd, server, **store, migrating.get());
    if (auto r = control->start(); !r) {
      spdlog::error("{}", r.error().describe());
      server.stop();
      return kExitFailure;
    }
  }
  // The control socket a restarted daemon finds (the socketpair above dies
  // with the daemon that made it).
  std::unique_ptr<ControlServer> control_listener;
  int control_listen_fd = -1;
  struct stat control_made {};
  auto remove_control_socket = [&] {
    struct stat now {};
    // Only the socket this process made: a later exporter's is left alone.
    if (::lstat(o.control_socket.c_str(), &now) == 0 && now.st_dev == control_made.st_dev &&
        now.st_ino == control_made.st_ino)
      ::unlink(o.control_socket.c_str());
    if (control_listen_fd >= 0) ::close(control_listen_fd);
  };
  if (!o.control_socket.empty()) {
    auto fd = listen_private_unix(o.control_socket, 8);
    if (!fd) {
      spdlog::error("--control-socket: {}", fd.error().describe());
      if (control) control->stop();
      server.stop();
      return kExitFailure;
    }
    control_listen_fd = *fd;
    ::lstat(o.control_socket.c_str(), &control_made);
    control_listener = std::make_unique<ControlServer>(*fd, server, **store, migrating.get());
    if (auto r = control_listener->start(); !r) {
      spdlog::error("{}", r.error().describe());
      remove_control_socket();
      if (control) control->stop();
      server.stop();
      return kExitFailure;
    }
    spdlog::info("control channel on {}", o.control_socket);
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
  if (control) control->stop();
  if (control_listener) control_listener->stop();
  if (!o.control_socket.empty()) remove_control_socket();
  if (migrating) migrating->cancel();
  server.stop();
  if (served.failed()) {
    spdlog::error("the {} store failed while serving", (*store)->name());
    return kExitFailure;
  }
  return kExitOk;
}

int exporter_main(int argc, char** argv, const ExporterBuild& build) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  auto opts = parse_command_line(args, build.options);
  if (!opts) {
    std::fprintf(stderr, "tierswap-nbd: %s\n", opts.error().message.c_str());
    return kExitUsage;
  }
  if (opts->help) {
    std::fputs(usage_text(build.options).c_str(), stdout);
    return kExitOk;
  }
  if (opts->version) {
    std::fputs(version_text(build.test_hooks).c_str(), stdout);
    return kExitOk;
  }
  spdlog::set_pattern("tierswap-nbd[%P] %l: %v");
  // Before the store is opened or a byte served: only CAP_IPC_LOCK and
  // CAP_SYS_RESOURCE stay (capabilities.hpp).
  auto caps = keep_only_needed_capabilities();
  if (!caps) {
    spdlog::error("{}", caps.error().message);
    return kExitFailure;
  }
  for (std::string_view rest = caps->warnings; !rest.empty();) {
    const auto nl = rest.find('\n');
    spdlog::warn("{}", rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  }
  return run_exporter(*opts, build.wrap_store);
}

}  // namespace tierswap::vram
