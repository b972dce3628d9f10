// DbusService: puts a ManagerApi on the bus as org.tierswap.Manager1.
//
//   auto svc = tierswap::dbus::DbusService::start(manager, {});
//   if (!svc) log once: svc.error().describe(), and keep running without D-Bus.
//   ... after the daemon's state changed (apply, observe tick): (*svc)->refresh();
//   svc->reset() (or let it go out of scope) before the manager is destroyed.
//
// What it does: owns its own bus connection and one thread that runs the bus
// event loop. The object /org/tierswap/Manager1 carries org.tierswap.Manager1
// (methods forward to ManagerApi; see org.tierswap.Manager1.xml) and
// org.freedesktop.DBus.ObjectManager; one object per tier under
// /org/tierswap/Tier/<name> (org.tierswap.Tier1) is added and removed as
// tiers come and go. Properties are served from the last Status read;
// refresh() re-reads ManagerApi::status() on the bus thread and sends
// PropertiesChanged for exactly what changed (so tools never poll).
// ManagerEvents are turned into signals on the bus thread.
//
// Threads and locks: every sdbus call happens on the bus thread. refresh()
// and the ManagerEvents callbacks only queue work and wake that thread, so
// the daemon may call them while holding its own locks; ManagerApi methods
// are called from the bus thread (see daemon/manager_api.hpp).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "daemon/manager_api.hpp"

namespace tierswap::dbus {

struct DbusOptions {
  // Bus to connect to: empty means the system bus (sd-bus honours
  // $DBUS_SYSTEM_BUS_ADDRESS, else unix:path=/run/dbus/system_bus_socket).
  std::string address;
  std::string bus_name = "org.tierswap.Manager1";
  // Ask polkit (org.tierswap.manage) about callers that are not root.
  bool use_polkit = true;
  // Safety net: also re-read status() this often even without refresh();
  // zero turns it off.
  std::chrono::milliseconds refresh_interval{2000};
};

class DbusService {
 public:
  // Connects, registers the objects, takes the bus name and starts the bus
  // thread. Errors (code ECONNREFUSED/ENOENT/EACCES/EEXIST, message naming
  // the bus address and the cause): no bus, name owned by another process,
  // or ownership refused by the bus policy.
  static Result<std::unique_ptr<DbusService>> start(ManagerApi& manager, DbusOptions options = {});

  // Thread-safe, never blocks on the bus: schedules a re-read of status().
  void refresh();

  // The connection's unique name (":1.42"), for logs.
  [[nodiscard]] const std::string& unique_name() const;

  // Stops the bus thread, releases the name, detaches from ManagerEvents.
  ~DbusService();

  DbusService(const DbusService&) = delete;
  DbusService& operator=(const DbusService&) = delete;

  struct Impl;

 private:
  explicit DbusService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierswap::dbus
