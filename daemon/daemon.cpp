#include "daemon/daemon.hpp"

#include <poll.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/engine.hpp"
#include "daemon/manager.hpp"
#include "daemon/notify.hpp"
#include "dbus/service.hpp"

#ifndef TIERSWAP_VERSION
#define TIERSWAP_VERSION "0"
#endif

namespace tierswap {

namespace {

constexpr const char* kUsage =
    "Usage: tierswapd [--config FILE] [--root DIR] [--keep-on-exit] [--bus-address ADDR | --no-dbus]\n"
    "Applies the tier spec and stays in the foreground.\n\n"
    "  --config FILE       config to apply (default /etc/tierswap.yaml, else the embedded default)\n"
    "  --root DIR          treat DIR as / for every /sys, /proc, /dev and /run access (tests)\n"
    "  --keep-on-exit      leave the tiers in place on SIGTERM/SIGINT\n"
    "  --bus-address ADDR  serve org.tierswap.Manager1 on this D-Bus address (default: the\n"
    "                      system bus; $DBUS_SYSTEM_BUS_ADDRESS is honoured)\n"
    "  --no-dbus           do not connect to D-Bus at all\n"
    "  --version           print the version and the features compiled in\n"
    "  -h, --help          show this help\n\n"
    "Signals: SIGHUP re-reads the config and applies the difference; SIGTERM/SIGINT\n"
    "abort a running demote, undo everything tierswapd changed and exit 0.\n"
    "Over D-Bus: GetStatus, Reload, Plan, Demote, Promote (tierswapctl). See tierswapd(8).\n";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "tierswapd: %s\n(see tierswapd --help)\n", msg.c_str());
  return 2;
}

}  // namespace

int run_daemon(int argc, char** argv) {
  EngineOptions opts;
  bool use_dbus = true;
  std::string bus_address;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    // "--name VALUE" or "--name=VALUE": the value ("" when it is missing);
    // nullopt when `a` is another option.
    auto option = [&](std::string_view name) -> std::optional<std::string> {
      if (a == name) return i + 1 < args.size() ? args[++i] : std::string();
      if (a.starts_with(std::string(name) + "=")) return a.substr(name.size() + 1);
      return std::nullopt;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf(
          "tierswapd %s\nfeatures: zram=yes zswap=yes file=yes partition=yes vram=no dbus=yes cuda=no "
          "sd_notify=builtin\n",
          TIERSWAP_VERSION);
      return 0;
    } else if (auto config = option("--config")) {
      if (config->empty()) return usage_error("--config needs a FILE");
      opts.config = *config;
    } else if (auto root = option("--root")) {
      if (root->empty()) return usage_error("--root needs a DIR");
      opts.root = *root;
    } else if (a == "--keep-on-exit") {
      opts.keep_on_exit = true;
    } else if (auto address = option("--bus-address")) {
      if (address->empty())
        return usage_error("--bus-address needs an ADDR (unix:path=/run/dbus/system_bus_socket)");
      bus_address = *address;
    } else if (a == "--no-dbus") {
      use_dbus = false;
    } else {
      return usage_error("unknown argument \"" + a + "\"");
    }
  }
  if (!use_dbus && !bus_address.empty()) return usage_error("--no-dbus and --bus-address exclude each other");
  if (const char* f = std::getenv("TIERSWAP_TEST_FAIL_STEP")) opts.fail_step = std::atoi(f);
  if (const char* f = std::getenv("TIERSWAP_TEST_FAKE_KERNEL"); f && *f == '1') opts.fake_kernel = true;

  auto log = spdlog::stderr_color_st("tierswapd");
  spdlog::set_default_logger(log);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  opts.info = [](const std::string& m) { spdlog::info("{}", m); };
  opts.warn = [](const std::string& m) { spdlog::warn("{}", m); };
  if (opts.fail_step) spdlog::warn("test hook: step {} of every apply will fail", opts.fail_step);

  // Signals arrive through a signalfd; block them first, so that none is
  // lost while the first apply runs.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&mask, s);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) {
    spdlog::error("sigprocmask: {}", std::strerror(errno));
    return 1;
  }
  const int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) {
    spdlog::error("signalfd: {}", std::strerror(errno));
    return 1;
  }

  if (opts.fake_kernel && opts.root != "/")
    spdlog::warn("test hook: recording kernel on the fake root, no syscalls");

  Engine engine(opts);
  ManagerOptions mopts;
  mopts.version = TIERSWAP_VERSION;
  mopts.info = opts.info;
  mopts.warn = opts.warn;
  Manager manager(engine, mopts);
  spdlog::info("tierswapd {} starting (root {}, config {})", TIERSWAP_VERSION, opts.root,
               opts.config ? *opts.config : "/etc/tierswap.yaml if present, else the embedded default");
  if (auto r = engine.start(); !r) {
    spdlog::error("apply failed, nothing left changed:\n{}", r.error().message);
    return 1;
  }
  manager.set_state("running");
  spdlog::info("config: {}", engine.config_source());

  // D-Bus after the first apply, so that the first status a tool reads is
  // the applied one. Without a bus: say so once and go on.
  std::unique_ptr<dbus::DbusService> svc;
  if (use_dbus) {
    dbus::DbusOptions dopts;
    dopts.address = bus_address;
    dopts.refresh_interval = std::chrono::milliseconds(0);  // the observe tick below refreshes
    auto s = dbus::DbusService::start(manager, dopts);
    if (s) {
      svc = std::move(*s);
      spdlog::info("D-Bus: serving org.tierswap.Manager1 on the {} as {}",
                   bus_address.empty() ? "system bus" : bus_address, svc->unique_name());
    } else {
      spdlog::warn("D-Bus: {}", s.error().message);
    }
  }
  notify("READY=1\nSTATUS=tiers applied");

  // Observe tick: every 2 s while D-Bus is up, so that properties follow the
  // kernel (usage, pressure) without anyone polling, and PressureAlert goes
  // out when PSI rises. No tick without D-Bus: nobody would hear it.
  const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tfd >= 0 && svc) {
    itimerspec its{};
    its.it_interval.tv_sec = 2;
    its.it_value.tv_sec = 2;
    ::timerfd_settime(tfd, 0, &its, nullptr);
  }

  for (;;) {
    pollfd fds[2] = {{sfd, POLLIN, 0}, {tfd, POLLIN, 0}};
    if (::poll(fds, tfd >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll: {}", std::strerror(errno));
      break;
    }
    if (tfd >= 0 && (fds[1].revents & POLLIN)) {
      std::uint64_t ticks;
      [[maybe_unused]] auto n = ::read(tfd, &ticks, sizeof ticks);
      manager.check_pressure();
      if (svc) svc->refresh();
    }
    if (!(fds[0].revents & POLLIN)) continue;
    signalfd_siginfo si{};
    const ssize_t n = ::read(sfd, &si, sizeof si);
    if (n < 0 && errno == EINTR) continue;
    if (n != sizeof si) {
      spdlog::error("signalfd read: {}", std::strerror(errno));
      break;
    }
    if (si.ssi_signo == SIGHUP) {
      notify("RELOADING=1");
      spdlog::info("SIGHUP: reloading the config");
      const auto t0 = std::chrono::steady_clock::now();
      auto r = manager.reload_steps("SIGHUP");
      const auto ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!r)
        spdlog::error("reload failed; the previous state stays:\n{}", r.error().message);
      else if (*r == 0)
        spdlog::info("reload: nothing to do ({:.1f} ms)", ms);
      else
        spdlog::info("reload: applied {} steps ({:.1f} ms)", *r, ms);
      if (svc) svc->refresh();
      notify("READY=1");
      continue;
    }
    spdlog::info("{}: stopping", ::strsignal(static_cast<int>(si.ssi_signo)));
    break;
  }
  notify("STOPPING=1");
  manager.set_state("stopping");
  if (manager.abort_demote("tierswapd is stopping"))
    spdlog::info("a running demote was aborted; the kernel keeps that area in use");
  svc.reset();  // before the manager and the engine
  if (tfd >= 0) ::close(tfd);
  ::close(sfd);
  if (auto r = engine.stop(); !r) {
    spdlog::error("teardown did not restore everything: {}", r.error().message);
    return 1;
  }
  spdlog::info("stopped; everything tierswapd changed is restored");
  return 0;
}

}  // namespace tierswap
