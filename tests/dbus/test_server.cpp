// tierswap-dbus-test-server: serves a ScriptedManager through the real
// DbusService, as tierswapd will. Test fixture only.
//
//   tierswap-dbus-test-server --address ADDR --status FILE --log FILE
//                             [--enomem TIER]... [--reload-error MSG] [--linger-ms N]
//
// Serves on an sd-event loop, as tierswapd does. Runs until SIGTERM/SIGINT;
// prints "ready <unique name>" once it owns the name. With --linger-ms, a
// signal first stops mutations (as tierswapd's teardown does), keeps serving
// reads for N ms, then exits.
#include <systemd/sd-event.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "dbus/service.hpp"
#include "dbus/status_json.hpp"
#include "tests/dbus/fake_manager.hpp"

int main(int argc, char** argv) {
  std::string address, status_file, log_file, reload_error;
  int linger_ms = 0;
  std::vector<std::string> enomem;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--address")
      address = v;
    else if (k == "--status")
      status_file = v;
    else if (k == "--log")
      log_file = v;
    else if (k == "--enomem")
      enomem.push_back(v);
    else if (k == "--reload-error")
      reload_error = v;
    else if (k == "--linger-ms")
      linger_ms = std::stoi(v);
    else {
      std::fprintf(stderr, "test server: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::stringstream text;
  text << std::ifstream(status_file).rdbuf();
  auto status = tierswap::dbus::status_from_json(text.str());
  if (!status) {
    std::fprintf(stderr, "test server: %s: %s\n", status_file.c_str(), status.error().message.c_str());
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts

  tierswap::test::ScriptedManager manager(*status, log_file);
  manager.enomem_tiers.insert(enomem.begin(), enomem.end());
  manager.reload_error = reload_error;
  sd_event* loop = nullptr;
  if (sd_event_default(&loop) < 0) return 1;
  tierswap::dbus::DbusOptions opt;
  opt.address = address;
  opt.warn = [](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); };
  opt.on_serving = [](const std::string& name) {
    std::printf("ready %s\n", name.c_str());
    std::fflush(stdout);
  };
  auto svc = tierswap::dbus::DbusService::attach(manager, loop, opt);
  if (!svc) {
    std::fprintf(stderr, "test server: %s\n", svc.error().describe().c_str());
    return 1;
  }
  struct Stop {
    sd_event* loop;
    tierswap::dbus::DbusService* svc;
    int linger_ms;
  } stop{loop, svc->get(), linger_ms};
  auto on_signal = [](sd_event_source*, const signalfd_siginfo*, void* u) {
    auto* st = static_cast<Stop*>(u);
    if (st->linger_ms <= 0) return sd_event_exit(st->loop, 0);
    st->svc->stop_mutations("the test server is stopping");
    sd_event_source* t = nullptr;
    return sd_event_add_time_relative(
        st->loop, &t, CLOCK_MONOTONIC, static_cast<std::uint64_t>(st->linger_ms) * 1000, 0,
        [](sd_event_source*, uint64_t, void* v) { return sd_event_exit(static_cast<sd_event*>(v), 0); },
        st->loop);
  };
  sd_event_add_signal(loop, nullptr, SIGTERM, on_signal, &stop);
  sd_event_add_signal(loop, nullptr, SIGINT, on_signal, &stop);
  sd_event_loop(loop);
  svc->reset();
  sd_event_unref(loop);
  return 0;
}
