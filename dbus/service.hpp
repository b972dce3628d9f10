// DbusService: puts a ManagerApi on the bus as org.tierswap.Manager1.
//
//   auto svc = tierswap::dbus::DbusService::attach(manager, loop, opts);   // never blocks
//   ... sd_event_loop(loop) ...
//   ... after the daemon's state changed (apply): (*svc)->refresh();
//   ... with a Status already read (the observe tick): (*svc)->refresh(status);
//   before teardown: (*svc)->stop_mutations("tierswapd is stopping");
//   svc->reset() (on the loop's thread) before the manager is destroyed.
//
// What it does: serves on the caller's sd-event loop. The object
// /org/tierswap/Manager1 carries org.tierswap.Manager1 (methods forward to
// ManagerApi; see org.tierswap.Manager1.xml); /org/tierswap carries
// org.freedesktop.DBus.ObjectManager; one object per tier under
// /org/tierswap/Tier/<name> (org.tierswap.Tier1) is added and removed as
// tiers come and go. Properties are served from the last Status read;
// refresh() re-reads ManagerApi::status() (refresh(Status) takes one the
// caller read) and sends PropertiesChanged for exactly what changed (so
// tools never poll). ManagerEvents become signals.
//
// The bus may not be there yet (tierswapd starts before dbus.socket at
// boot) or may go away (dbus-daemon restarts): the connection is opened on
// a short-lived helper thread, because sdbus-c++ opens it synchronously and
// a bus that accepts but never answers would stall the loop for the D-Bus
// timeout (25 s). Its only output is a message queued onto the loop. While
// there is no bus, the service tries again every retry_interval, says so
// once in the log, and says so again when it serves.
//
// Mutations (Reload, Demote, Promote) never block the loop: the caller
// check asks polkit asynchronously (dbus/caller_access.hpp), and Reload's
// apply runs through ManagerApi::start_reload_as, its reply sent from the
// loop once the apply has ended. Meanwhile reads and other callers are
// served. A reply still owed when the service goes away is an error
// ("tierswapd stopped before the call ended").
//
// Threads: every sdbus call and every ManagerApi call made here happens on
// the thread that runs the loop (start_reload_as's `done` runs on the
// daemon's worker and only queues the reply). refresh() and the ManagerEvents callbacks
// only queue work onto the loop (an eventfd source), so the daemon may call
// them from any thread while holding its own locks.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "dbus/manager_api.hpp"

struct sd_event;

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
  // While there is no bus (or after it went away): connect again this often.
  std::chrono::milliseconds retry_interval{1000};
  // Log sinks (may be empty).
  std::function<void(const std::string&)> info, warn;
  // Called on the loop's thread whenever the name is owned (the first time,
  // and again after a reconnect), with the connection's unique name.
  std::function<void(const std::string& unique_name)> on_serving;
};

class DbusService {
 public:
  // Attaches to `loop` and starts connecting in the background; returns at
  // once. Errors: only local ones (eventfd, sd-event sources). A missing
  // bus is not an error (see above); a name owned by another process or
  // refused by the bus policy is logged through `warn` and not retried.
  static Result<std::unique_ptr<DbusService>> attach(ManagerApi& manager, sd_event* loop,
                                                     DbusOptions options = {});

  // Thread-safe, never blocks: schedules a re-read of status() on the loop.
  void refresh();
  // Loop thread only: publishes a Status the caller has already read (the
  // daemon's tick observes the machine once and publishes that); status()
  // is not called. Applied at once rather than queued: work already queued
  // (events from an operation's thread) runs after it and reads status()
  // afresh, so nothing older than `status` can overwrite it.
  void refresh(const Status& status);

  // Loop thread. From now on Reload, Demote and Promote are refused with
  // org.tierswap.Error.Busy ("<method> refused: <why>"); reads still work.
  // The daemon calls it first thing on SIGTERM, before aborting a demote.
  void stop_mutations(const std::string& why);

  // Whether the name is owned now, and the connection's unique name
  // (":1.42"; empty while not serving).
  [[nodiscard]] bool serving() const;
  [[nodiscard]] const std::string& unique_name() const;

  // Loop thread. Releases the name, closes the connection, detaches from
  // ManagerEvents and from the loop.
  ~DbusService();

  DbusService(const DbusService&) = delete;
  DbusService& operator=(const DbusService&) = delete;

  struct Impl;

 private:
  explicit DbusService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierswap::dbus
