// UPowerClient: AC or battery from UPower on the system bus
// (org.freedesktop.UPower, object /org/freedesktop/UPower, property
// OnBattery), kept current by its PropertiesChanged signal.
//
//   auto up = dbus::UPowerClient::connect({}, [&](std::optional<bool> b) { post_to_loop(b); });
//   if (!up) { log_once(up.error().message); /* read /sys/class/power_supply instead */ }
//   ... (*up)->on_battery()   // cheap: an atomic load
//
// Where UPower is not on the bus (no upowerd: servers, containers, these
// test machines), connect() fails with ENOENT and the caller falls back to
// backends/power/power_supply.hpp. If UPower leaves the bus later,
// on_battery() turns nullopt and the callback is told so (fall back the
// same way); when it comes back, its OnBattery is read again.
//
// Threads: connect() blocks for the connection and one Get call (bounded by
// call_timeout); run it where a short stall does not matter (start-up, or a
// helper thread). Afterwards the client runs its own bus thread: on_change
// is called on that thread, once per change of value, and must not block
// (post the value to the daemon's loop). on_battery() may be called from
// any thread. Destroying the client stops that thread; do not destroy it
// from inside on_change.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace tierswap::dbus {

struct UPowerOptions {
  // Bus to connect to: empty means the system bus (sd-bus honours
  // $DBUS_SYSTEM_BUS_ADDRESS, else unix:path=/run/dbus/system_bus_socket).
  std::string address;
  // Bound on the initial Get (a bus that accepts but never answers).
  std::chrono::milliseconds call_timeout{2000};
};

class UPowerClient {
 public:
  // nullopt: UPower left the bus.
  using OnChange = std::function<void(std::optional<bool> on_battery)>;

  // Errors: ENOTCONN no system bus ("cannot connect to the system bus:
  // ..."); ENOENT UPower is not on it and cannot be activated; EIO any
  // other D-Bus error, with its name and message.
  static Result<std::unique_ptr<UPowerClient>> connect(UPowerOptions options, OnChange on_change = {});
  ~UPowerClient();
  UPowerClient(const UPowerClient&) = delete;
  UPowerClient& operator=(const UPowerClient&) = delete;

  // The last OnBattery UPower reported; nullopt while UPower is off the bus.
  [[nodiscard]] std::optional<bool> on_battery() const;

  struct Impl;

 private:
  explicit UPowerClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierswap::dbus
