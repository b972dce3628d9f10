#include "daemon/daemon.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/engine.hpp"
#include "daemon/notify.hpp"

#ifndef TIERSWAP_VERSION
#define TIERSWAP_VERSION "0"
#endif

namespace tierswap {

namespace {

constexpr const char* kUsage =
    "Usage: tierswapd [--config FILE] [--root DIR] [--keep-on-exit]\n"
    "Applies the tier spec and stays in the foreground.\n\n"
    "  --config FILE    config to apply (default /etc/tierswap.yaml, else the embedded default)\n"
    "  --root DIR       treat DIR as / for every /sys, /proc, /dev and /run access (tests)\n"
    "  --keep-on-exit   leave the tiers in place on SIGTERM/SIGINT\n"
    "  --version        print the version and the features compiled in\n"
    "  -h, --help       show this help\n\n"
    "Signals: SIGHUP re-reads the config and applies the difference; SIGTERM/SIGINT\n"
    "undo everything tierswapd changed and exit 0. See tierswapd(8).\n";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "tierswapd: %s\n(see tierswapd --help)\n", msg.c_str());
  return 2;
}

}  // namespace

int run_daemon(int argc, char** argv) {
  EngineOptions opts;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&](const char* name) -> const std::string* {
      if (i + 1 >= args.size()) return nullptr;
      (void)name;
      return &args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("tierswapd %s\nfeatures: zram=yes zswap=yes file=yes partition=yes vram=no dbus=no cuda=no "
                  "sd_notify=builtin\n",
                  TIERSWAP_VERSION);
      return 0;
    } else if (a == "--config" || a.starts_with("--config=")) {
      const std::string* v = a == "--config" ? value("--config") : nullptr;
      std::string s = v ? *v : a.substr(9);
      if (s.empty()) return usage_error("--config needs a FILE");
      opts.config = s;
    } else if (a == "--root" || a.starts_with("--root=")) {
      const std::string* v = a == "--root" ? value("--root") : nullptr;
      std::string s = v ? *v : a.substr(7);
      if (s.empty()) return usage_error("--root needs a DIR");
      opts.root = s;
    } else if (a == "--keep-on-exit") {
      opts.keep_on_exit = true;
    } else {
      return usage_error("unknown argument \"" + a + "\"");
    }
  }
  if (const char* f = std::getenv("TIERSWAP_TEST_FAIL_STEP")) opts.fail_step = std::atoi(f);

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

  Engine engine(opts);
  spdlog::info("tierswapd {} starting (root {}, config {})", TIERSWAP_VERSION, opts.root,
               opts.config ? *opts.config : "/etc/tierswap.yaml if present, else the embedded default");
  if (auto r = engine.start(); !r) {
    spdlog::error("apply failed, nothing left changed:\n{}", r.error().message);
    return 1;
  }
  spdlog::info("config: {}", engine.config_source());
  notify("READY=1\nSTATUS=tiers applied");

  for (;;) {
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
      auto r = engine.reload();
      const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!r) spdlog::error("reload failed; the previous state stays:\n{}", r.error().message);
      else if (*r == 0) spdlog::info("reload: nothing to do ({:.1f} ms)", ms);
      else spdlog::info("reload: applied {} steps ({:.1f} ms)", *r, ms);
      notify("READY=1");
      continue;
    }
    spdlog::info("{}: stopping", ::strsignal(static_cast<int>(si.ssi_signo)));
    break;
  }
  notify("STOPPING=1");
  ::close(sfd);
  if (auto r = engine.stop(); !r) {
    spdlog::error("teardown did not restore everything: {}", r.error().message);
    return 1;
  }
  spdlog::info("stopped; everything tierswapd changed is restored");
  return 0;
}

}  // namespace tierswap
