// LogindClient: systemd-logind's sleep hooks on the system bus
// (org.freedesktop.login1, object /org/freedesktop/login1, interface
// org.freedesktop.login1.Manager): the PrepareForSleep(bool) signal and
// Inhibit(what, who, why, mode), whose answer is a file descriptor that
// holds the lock until it is closed.
//
//   auto c = dbus::LogindClient::start({}, {.prepare_for_sleep = [&](bool s) { post_to_loop(s); },
//                                           .connection = [&](bool up, std::string why) { ... }});
//   c->inhibit("sleep", "tierswap", "draining the VRAM tier", "delay",
//              [&](Result<dbus::Inhibitor> lock) { post_to_loop(std::move(lock)); });
//
// A "delay" lock makes logind wait (up to its InhibitDelayMaxSec) after it
// sent PrepareForSleep(true) until the lock is closed; a "block" lock makes
// it refuse to suspend while the lock is held.
//
// Threads: start() returns at once. The client runs one thread of its own
// that connects (a bus that accepts and never answers stalls only that
// thread), subscribes, and then serves: signals, and the inhibit() calls,
// made there one at a time with a bounded timeout. Every callback runs on
// that thread and must not block (post to the daemon's loop). Where there
// is no bus or logind is not on it, `connection(false, why)` says so and
// the thread tries again every `retry`; a logind that leaves the bus and
// comes back is followed the same way. Destroying the client stops the
// thread (never from inside a callback).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace tierswap::dbus {

struct LogindOptions {
  // Bus to connect to: empty means the system bus (sd-bus honours
  // $DBUS_SYSTEM_BUS_ADDRESS, else unix:path=/run/dbus/system_bus_socket).
  std::string address;
  // Bound on each call (a logind that never answers).
  std::chrono::milliseconds call_timeout{2000};
  // How long to wait before trying again without a bus or logind.
  std::chrono::milliseconds retry{30000};
};

// An inhibitor lock: the descriptor logind handed out. Closing it (reset(),
// the destructor) releases the lock. Move-only.
class Inhibitor {
 public:
  Inhibitor() = default;
  explicit Inhibitor(int fd) : fd_(fd) {}
  ~Inhibitor() { reset(); }
  Inhibitor(Inhibitor&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Inhibitor& operator=(Inhibitor&& o) noexcept;
  Inhibitor(const Inhibitor&) = delete;
  Inhibitor& operator=(const Inhibitor&) = delete;

  [[nodiscard]] bool held() const { return fd_ >= 0; }
  void reset();

 private:
  int fd_ = -1;
};

// One entry of logind's ListInhibitors.
struct InhibitorInfo {
  std::string what, who, why, mode;
  std::uint32_t uid = 0, pid = 0;
};

class LogindClient {
 public:
  struct Callbacks {
    // PrepareForSleep(true) before the machine sleeps, (false) after it woke.
    std::function<void(bool start)> prepare_for_sleep;
    // true once subscribed to logind; false with the reason when there is no
    // bus, logind is not on it, or it left (a held lock is then gone too).
    std::function<void(bool connected, const std::string& why)> connection;
    // logind's InhibitDelayMaxUSec (how long it waits for a delay lock after
    // PrepareForSleep(true)), read once connected (and again when logind
    // comes back); not called where the property cannot be read.
    std::function<void(std::chrono::microseconds)> inhibit_delay_max;
  };

  static std::unique_ptr<LogindClient> start(LogindOptions options, Callbacks callbacks);
  ~LogindClient();
  LogindClient(const LogindClient&) = delete;
  LogindClient& operator=(const LogindClient&) = delete;

  // Asks logind for a lock (what "sleep", who "tierswap", mode "delay" or
  // "block"). `done` gets the lock or the error (not connected: ENOTCONN;
  // logind's refusal: EIO with its name and message), on the client's
  // thread.
  void inhibit(std::string what, std::string who, std::string why, std::string mode,
               std::function<void(Result<Inhibitor>)> done);

  struct Impl;

 private:
  explicit LogindClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// logind's InhibitDelayMaxUSec (default 5 s; InhibitDelayMaxSec= in
// logind.conf), on a connection of its own (blocking, bounded by
// options.call_timeout): for tierswapctl doctor. Errors as list_inhibitors.
Result<std::chrono::microseconds> inhibit_delay_max(const LogindOptions& options);

// logind's ListInhibitors, on a connection of its own (blocking, bounded by
// options.call_timeout): for tierswapctl doctor. Errors: ENOTCONN no bus,
// ENOENT logind is not on it, EIO anything else.
Result<std::vector<InhibitorInfo>> list_inhibitors(const LogindOptions& options);

}  // namespace tierswap::dbus
