// tierswap-dbus-test-server: serves a ScriptedManager through the real
// DbusService, as tierswapd will. Test fixture only.
//
//   tierswap-dbus-test-server --address ADDR --status FILE --log FILE
//                             [--enomem TIER]... [--reload-error MSG]
//
// Runs until SIGTERM/SIGINT; prints "ready <unique name>" once it owns the name.
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
  tierswap::dbus::DbusOptions opt;
  opt.address = address;
  auto svc = tierswap::dbus::DbusService::start(manager, opt);
  if (!svc) {
    std::fprintf(stderr, "test server: %s\n", svc.error().describe().c_str());
    return 1;
  }
  std::printf("ready %s\n", (*svc)->unique_name().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  svc->reset();
  return 0;
}
