#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "daemon/build_info.hpp"
#include "daemon/figures_watcher.hpp"
#include "daemon/manager.hpp"
#include "daemon/metrics_service.hpp"
#include "daemon/psi_triggers.hpp"
#include "daemon/signal_readers.hpp"
#include "daemon/suspend_guard.hpp"
#include "dbus/service.hpp"

namespace tierswap {

namespace {

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "tierswapd: %s\n(see tierswapd --help)\n", msg.c_str());
  return 2;
}

constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warning", "error", "critical", "off"};

}  // namespace

std::optional<int> parse_command_line(int argc, char** argv, DaemonOptions& out) {
  CLI::App app{"Applies the tier spec and stays in the foreground.", "tierswapd"};
  app.allow_extras();  // unknown arguments are reported below, by name
  app.get_formatter()->column_width(26);
  std::string config, root, bus_address;
  bool keep = false, no_dbus = false, version = false;
  app.add_option("--config", config,
                 "config to apply (default /etc/tierswap.yaml, else the embedded default)")
      ->type_name("FILE");
  app.add_option("--root", root, "treat DIR as / for every /sys, /proc, /dev and /run access (tests)")
      ->type_name("DIR");
  app.add_flag("--keep-on-exit", keep, "leave the tiers in place on SIGTERM/SIGINT");
  app.add_option("--bus-address", bus_address,
                 "serve org.tierswap.Manager1 on this D-Bus address (default: the system\n"
                 "bus, $DBUS_SYSTEM_BUS_ADDRESS); waits for a bus that is not up yet")
      ->type_name("ADDR");
  app.add_flag("--no-dbus", no_dbus, "do not connect to D-Bus at all");
  std::string levels;
  for (const char* l : kLogLevels) levels += (levels.empty() ? "" : ", ") + std::string(l);
  app.add_option("--log-level", out.log_level, "log at LEVEL and above (default info):\n" + levels)
      ->type_name("LEVEL");
  app.add_option("--record", out.record_path,
                 "append every snapshot the policy engine decides on to FILE (JSON lines;\n"
                 "replay with tierswapctl simulate FILE)")
      ->type_name("FILE");
  app.add_flag("--version", version, "print the version and the features compiled in");
  app.footer(
      "Signals: SIGHUP re-reads the config and applies the difference; SIGTERM/SIGINT\n"
      "stop accepting D-Bus changes, abort a running demote, undo everything tierswapd\n"
      "changed and exit 0.\n"
      "Over D-Bus: GetStatus, Reload, Plan, Demote, Promote (tierswapctl). See tierswapd(8).\n"
      "Exit status: 0 stopped cleanly, 1 apply or teardown failed, 2 usage error.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    const std::string help = app.help();
    std::fputs(
        "Usage: tierswapd [--config FILE] [--root DIR] [--keep-on-exit] [--bus-address ADDR | --no-dbus]\n"
        "                 [--log-level LEVEL] [--record FILE]\n"
        "Applies the tier spec and stays in the foreground.\n\n",
        stdout);
    std::fputs(help.substr(std::min(help.find("Options:"), help.size())).c_str(), stdout);
    return 0;
  } catch (const CLI::ArgumentMismatch& e) {
    // "--root" given last, without its value.
    for (const auto* o : app.get_options()) {
      if (!o->get_lnames().empty() &&
          std::string(e.what()).find("--" + o->get_lnames()[0]) != std::string::npos)
        return usage_error("--" + o->get_lnames()[0] + " needs " +
                           (o->get_type_name() == "ADDR" ? "an ADDR (unix:path=/run/dbus/system_bus_socket)"
                                                         : "a " + o->get_type_name()));
    }
    return usage_error(e.what());
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  if (version) {
    std::printf("tierswapd %s\nfeatures: %s\n", TIERSWAP_VERSION, TIERSWAP_FEATURES);
    return 0;
  }
  if (!app.remaining().empty()) return usage_error("unknown argument \"" + app.remaining().front() + "\"");
  for (auto [name, value, what] :
       {std::tuple{"--config", &config, "a FILE"},
        {"--root", &root, "a DIR"},
        {"--record", &out.record_path, "a FILE"},
        {"--bus-address", &bus_address, "an ADDR (unix:path=/run/dbus/system_bus_socket)"}}) {
    if (app.count(name) > 0 && value->empty()) return usage_error(std::string(name) + " needs " + what);
  }
  if (no_dbus && app.count("--bus-address") > 0)
    return usage_error("--no-dbus and --bus-address exclude each other");
  if (app.count("--log-level") > 0) {
    bool known = out.log_level == "warn";
    for (const char* l : kLogLevels) known = known || out.log_level == l;
    if (!known) return usage_error("--log-level: \"" + out.log_level + "\" is not a level (" + levels + ")");
  }
  if (!config.empty()) out.engine.config = config;
  if (!root.empty()) out.engine.root = root;
  out.engine.keep_on_exit = keep;
  out.use_dbus = !no_dbus;
  out.bus_address = bus_address;
  return std::nullopt;
}

namespace {

// Under systemd with stderr connected to the journal ($JOURNAL_STREAM names
// stderr's device:inode), each line gets the journal's "<N>" priority
// prefix and no timestamp (the journal adds one); otherwise plain text.
bool stderr_is_journal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js || !*js) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

class JournalPriority final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    int prio = 6;  // LOG_INFO
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        prio = 7;
        break;
      case spdlog::level::info:
        prio = 6;
        break;
      case spdlog::level::warn:
        prio = 4;
        break;
      case spdlog::level::err:
        prio = 3;
        break;
      case spdlog::level::critical:
        prio = 2;
        break;
      default:
        break;
    }
    const char text[] = {'<', static_cast<char>('0' + prio), '>'};
    dest.append(text, text + 3);
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriority>();
  }
};

void setup_logging(const std::string& level) {
  auto log = spdlog::stderr_color_mt("tierswapd");
  if (stderr_is_journal()) {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<JournalPriority>('*').set_pattern("%*%v");
    log->set_formatter(std::move(f));
  } else {
    log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  log->set_level(spdlog::level::from_str(level));
  log->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(log);
}

// A SIGHUP reload's end, from the operation runner's worker to the loop: the
// worker leaves the result here and wakes the loop through the eventfd; the
// loop logs it, refreshes the bus and tells systemd it is ready again.
// Shared with the worker, so that a reload ending after the loop has gone
// (SIGTERM during it) writes into a live object.
struct ReloadMailbox {
  int fd = -1;
  std::mutex mu;
  std::optional<Result<std::size_t>> result;
  std::chrono::steady_clock::time_point t0;
  ReloadMailbox() : fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~ReloadMailbox() {
    if (fd >= 0) ::close(fd);
  }
  ReloadMailbox(const ReloadMailbox&) = delete;
  ReloadMailbox& operator=(const ReloadMailbox&) = delete;
};

// The loop and what it drives. Every callback runs on the loop's thread.
struct Daemon {
  const DaemonOptions& options;
  Engine& engine;
  Manager& manager;
  sd_event* loop = nullptr;
  std::unique_ptr<dbus::DbusService> svc;
  std::unique_ptr<PsiTriggers> triggers;
  std::unique_ptr<SuspendGuard> suspend;
  std::unique_ptr<FiguresWatcher> figures;
  std::shared_ptr<ReloadMailbox> reload_box = std::make_shared<ReloadMailbox>();

  void reload();
  void reload_done();
  void tick();
  int stop();
};

// SIGHUP: the apply (swapoffs included) runs on the operation runner's
// worker, like D-Bus Reload, so that the loop keeps serving the bus, the
// tick and the signals meanwhile; reload_done() reports its end.
void Daemon::reload() {
  sd_notify(0, "RELOADING=1");
  spdlog::info("SIGHUP: reloading the config");
  reload_box->t0 = std::chrono::steady_clock::now();
  auto started = manager.start_reload_steps("SIGHUP", [box = reload_box](Result<std::size_t> r) {
    {
      std::lock_guard lk(box->mu);
      box->result = std::move(r);
    }
    const std::uint64_t one = 1;
    if (::write(box->fd, &one, sizeof one) < 0) {
      // Only a full counter refuses the write, and the loop reads it then.
    }
  });
  if (!started) {
    spdlog::error("reload refused; the previous state stays: {}", started.error().message);
    sd_notify(0, "READY=1");
  }
}

void Daemon::reload_done() {
  std::uint64_t n = 0;
  if (::read(reload_box->fd, &n, sizeof n) < 0) return;
  std::optional<Result<std::size_t>> r;
  {
    std::lock_guard lk(reload_box->mu);
    r.swap(reload_box->result);
  }
  if (!r) return;
  const auto ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - reload_box->t0).count();
  if (!*r)
    spdlog::error("reload failed; the previous state stays:\n{}", r->error().message);
  else if (**r == 0)
    spdlog::info("reload: nothing to do ({:.1f} ms)", ms);
  else
    spdlog::info("reload: applied {} steps ({:.1f} ms)", **r, ms);
  if (svc) svc->refresh();
  sd_notify(0, "READY=1");
}

// Observe tick (and PSI trigger): one observation, PressureAlert when PSI
// rises, the policy's decision on it; properties follow the kernel (usage,
// pressure) without anyone polling. The properties come from the tick's
// own observation: one read of the machine per tick.
void Daemon::tick() {
  const Status s = manager.tick();
  // The exporters' answers to this tick's figures requests are taken when
  // they arrive, on this loop: the tick never waits for them.
  if (figures) figures->sync();
  if (suspend) suspend->update();
  if (svc) svc->refresh(s);
}

// Teardown, in this order: no new D-Bus mutation can start (a Demote
// arriving now would race the teardown's own swapoff of the same area),
// a running demote is aborted, the bus is left, then the tiers are undone.
int Daemon::stop() {
  sd_notify(0, "STOPPING=1");
  if (svc) svc->stop_mutations("tierswapd is stopping");
  manager.set_state("stopping");
  if (manager.abort_demote("tierswapd is stopping"))
    spdlog::info("a running demote was aborted; the kernel keeps that area in use");
  triggers.reset();
  figures.reset();
  suspend.reset();  // its locks are released: the teardown drains nothing more before a sleep
  svc.reset();      // before the manager and the engine
  if (auto r = engine.stop(); !r) {
    spdlog::error("teardown did not restore everything: {}", r.error().message);
    return 1;
  }
  if (options.engine.keep_on_exit)
    spdlog::info(
        "stopped; the tiers stay in place (--keep-on-exit), the journal lists them for the next start");
  else
    spdlog::info("stopped; everything tierswapd changed is restored");
  return 0;
}

constexpr std::uint64_t kTickUsec = 2'000'000;
// The GPU watch between ticks (Manager::gpu_watch) while a vram tier's blocks
// are in VRAM: NVML alone, about 20 us a card. With the 2 s tick alone,
// another program's allocation waited 0-2 s for the policy (measured on an
// H200: 92-2031 ms to the first VRAM freed, bench/results/contention-gpu.md).
constexpr std::uint64_t kGpuWatchUsec = 250'000;

// --record FILE, opened before the first apply so that a bad path stops
// the daemon before it changes anything. The fd, or -1 when not asked.
Result<int> open_record(const std::string& path) {
  if (path.empty()) return -1;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return fail(errno, "--record " + path + ": cannot open it for appending");
  return fd;
}

// Metrics (`metrics:`, daemon/metrics_service.hpp): the textfile and the
// endpoint, on the loop; it follows `metrics:` across reloads. nullptr when
// it could not start (logged: metrics never stop tierswapd).
std::unique_ptr<MetricsService> start_metrics(sd_event* loop, Engine& engine, Manager& manager,
                                              const EngineOptions& opts) {
  MetricsOptions mo{[&engine] { return engine.metrics_settings(); }, [&manager] { return manager.status(); },
                    opts.info, opts.warn};
  auto m = MetricsService::attach(loop, engine.fs(), std::move(mo));
  if (m) return std::move(*m);
  spdlog::warn("{} (metrics disabled; tierswapd keeps working without them)", m.error().describe());
  return nullptr;
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
  setup_logging(options.log_level);
  EngineOptions opts = options.engine;
  opts.info = [](const std::string& m) { spdlog::info("{}", m); };
  opts.warn = [](const std::string& m) { spdlog::warn("{}", m); };
  for (const auto& w : options.start_warnings) spdlog::warn("{}", w);

  // Signals are blocked before anything else, so that none is lost while
  // the first apply runs; the loop reads them (signalfd) once it runs.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&mask, s);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) {
    spdlog::error("sigprocmask: {}", std::strerror(errno));
    return 1;
  }
  sd_event* loop = nullptr;
  if (int r = sd_event_new(&loop); r < 0) {
    spdlog::error("sd_event_new: {}", std::strerror(-r));
    return 1;
  }
  std::unique_ptr<sd_event, decltype(&sd_event_unref)> loop_ref(loop, &sd_event_unref);

  auto record = open_record(options.record_path);
  if (!record) {
    spdlog::error("{}", record.error().describe());
    return 1;
  }
  std::unique_ptr<int, void (*)(int*)> record_fd(new int(*record), [](int* fd) {
    if (*fd >= 0) ::close(*fd);
    delete fd;
  });

  Engine engine(opts);
  ManagerOptions mopts;
  mopts.version = TIERSWAP_VERSION;
  mopts.info = opts.info;
  mopts.warn = opts.warn;
  mopts.providers =
      options.signal_readers
          ? signal_readers(engine, {.use_bus = options.use_dbus, .bus_address = options.bus_address})
          : options.providers;
  if (*record >= 0) {
    mopts.record = [fd = *record, warned = false](const std::string& line) mutable {
      // One write(2) per line (O_APPEND): a reader never sees half a line.
      if (::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) || warned) return;
      warned = true;
      spdlog::warn("--record: cannot write: {}; snapshots are not recorded from now on",
                   std::strerror(errno));
    };
    spdlog::info("recording the policy's snapshots to {}", options.record_path);
  }
  Manager manager(engine, mopts);
  spdlog::info("tierswapd {} starting (root {}, config {})", TIERSWAP_VERSION, opts.root,
               opts.config ? *opts.config : "/etc/tierswap.yaml if present, else the embedded default");
  if (auto r = engine.start(); !r) {
    spdlog::error("apply failed, nothing left changed:\n{}", r.error().message);
    return 1;
  }
  manager.set_state("running");
  spdlog::info("config: {}", engine.config_source());

  Daemon d{options, engine, manager, loop, nullptr, nullptr, nullptr, nullptr};
  d.figures = std::make_unique<FiguresWatcher>(
      loop, [&manager] { return manager.figures_watches(); },
      [&manager](const std::string& tier, std::uint64_t generation) {
        return manager.figures_ready(tier, generation);
      });
  auto on_signal = [](sd_event_source*, const signalfd_siginfo* si, void* u) {
    auto* self = static_cast<Daemon*>(u);
    if (si->ssi_signo == SIGHUP) {
      self->reload();
      return 0;
    }
    spdlog::info("{}: stopping", ::strsignal(static_cast<int>(si->ssi_signo)));
    return sd_event_exit(self->loop, 0);
  };
  auto on_reload_done = [](sd_event_source*, int, uint32_t, void* u) {
    static_cast<Daemon*>(u)->reload_done();
    return 0;
  };
  const int io = d.reload_box->fd < 0
                     ? -errno
                     : sd_event_add_io(loop, nullptr, d.reload_box->fd, EPOLLIN, on_reload_done, &d);
  if (io < 0) {
    spdlog::error("cannot watch the end of a SIGHUP reload (eventfd): {}", std::strerror(-io));
    d.stop();
    return 1;
  }
  for (int s : {SIGHUP, SIGTERM, SIGINT}) {
    if (int r = sd_event_add_signal(loop, nullptr, s, on_signal, &d); r < 0) {
      spdlog::error("cannot watch signal {}: {}", s, std::strerror(-r));
      d.stop();
      return 1;
    }
  }

  // D-Bus after the first apply, so that the first status a tool reads is
  // the applied one. The service connects in the background (and again
  // whenever the bus appears or comes back); the loop never waits for it.
  if (options.use_dbus) {
    dbus::DbusOptions dopts;
    dopts.address = options.bus_address;
    dopts.refresh_interval = std::chrono::milliseconds(0);  // the observe tick refreshes
    dopts.info = opts.info;
    dopts.warn = opts.warn;
    auto s = dbus::DbusService::attach(manager, loop, dopts);
    if (s)
      d.svc = std::move(*s);
    else
      spdlog::warn("D-Bus: {} (D-Bus API disabled; tierswapd keeps working without it)",
                   s.error().describe());
  }
  // Suspend (logind, on the same bus as the API): only where a tier would
  // lose its pages across it does the guard connect.
  if (options.use_dbus) {
    SuspendGuardOptions so;
    so.bus_address = options.bus_address;
    so.info = opts.info;
    so.warn = opts.warn;
    auto g = SuspendGuard::attach(loop, engine, manager, so);
    if (g)
      d.suspend = std::move(*g);
    else
      spdlog::warn("suspend: {} (tiers that do not survive suspend are not drained before it)",
                   g.error().describe());
  }
  auto metrics = start_metrics(loop, engine, manager, opts);
  sd_notify(0, "READY=1\nSTATUS=tiers applied");

  // The tick runs with or without D-Bus: the policy engine decides on it.
  auto on_tick = [](sd_event_source* s, uint64_t t, void* u) {
    static_cast<Daemon*>(u)->tick();
    sd_event_source_set_time(s, t + kTickUsec);
    return sd_event_source_set_enabled(s, SD_EVENT_ON);
  };
  if (int r = sd_event_add_time_relative(loop, nullptr, CLOCK_MONOTONIC, kTickUsec, 0, on_tick, &d); r < 0)
    spdlog::warn("no observe tick: {}", std::strerror(-r));
  auto on_gpu_watch = [](sd_event_source* s, uint64_t t, void* u) {
    auto& d = *static_cast<Daemon*>(u);
    const auto w = d.manager.gpu_watch();
    if (w.tick_now) {
      spdlog::debug("GPU watch: a vram tier crossed a rule; deciding now");
      d.tick();
    }
    sd_event_source_set_time(s, t + (w.watching ? kGpuWatchUsec : kTickUsec));
    return sd_event_source_set_enabled(s, SD_EVENT_ON);
  };
  if (int r = sd_event_add_time_relative(loop, nullptr, CLOCK_MONOTONIC, kTickUsec, 0, on_gpu_watch, &d);
      r < 0)
    spdlog::warn("no GPU watch (the policy sees the GPUs on the tick alone): {}", std::strerror(-r));
  PsiTriggers::Options topts;
  topts.info = opts.info;
  topts.warn = opts.warn;
  d.triggers = PsiTriggers::arm(
      loop, engine.fs(),
      [&d](const std::string& resource) {
        spdlog::debug("PSI trigger: {} pressure", resource);
        d.tick();
      },
      topts);

  if (int r = sd_event_loop(loop); r < 0) spdlog::error("event loop: {}", std::strerror(-r));
  return d.stop();
}

}  // namespace tierswap
