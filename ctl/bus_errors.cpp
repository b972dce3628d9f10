#include "ctl/bus_errors.hpp"

#include <cstdio>
#include <string>

#include "ctl/command.hpp"

namespace tierswap::ctl {

int report_call_error(std::string_view what, const dbus::CallError& e) {
  std::string line = "tierswapctl: " + std::string(what) + ": " + e.message;
  if (!e.name.empty() && e.kind != dbus::CallError::no_daemon) line += " [" + e.name + "]";
  std::fprintf(stderr, "%s\n", line.c_str());
  switch (e.kind) {
    case dbus::CallError::no_bus:
    case dbus::CallError::no_daemon:
      return kExitNoDaemon;
    case dbus::CallError::denied:
      return kExitDenied;
    case dbus::CallError::failed:
      break;
  }
  return e.error == ErrorKind::permission_denied ? kExitDenied : kExitFailed;
}

std::unique_ptr<dbus::BusClient> connect_or_report(int* exit_code) {
  auto c = dbus::BusClient::connect();
  if (!c) {
    *exit_code = report_call_error("connect", c.error());
    return nullptr;
  }
  return std::move(*c);
}

}  // namespace tierswap::ctl
