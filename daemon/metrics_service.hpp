// MetricsService: the daemon's Prometheus exposition (`metrics:` in the
// config; off when neither key is set), driven by the daemon's sd-event
// loop: no thread of its own.
//
//   textfile  rewritten every kTextfileInterval and at start, atomically
//             (a temporary file in the same directory, 0644, then rename),
//             for node_exporter's textfile collector. The directory is
//             opened one component at a time without following a link, and
//             must be owned by root and writable by nobody else (its
//             ancestors may be anyone's: Debian's /var/lib/prometheus is the
//             prometheus user's); it is never created. Removed again when the service
//             stops or the textfile is turned off or moved, so that no stale
//             figures stay behind. The path is under --root like every
//             other path.
//   listen    a TCP socket (config/metrics_settings.hpp: loopback, or a
//             non-loopback address written in the config, which the log
//             names) with an IO source on the loop. Each connection: at most
//             kMaxRequestBytes of request head within kRequestTimeout, then
//             one answer and close; GET (or HEAD) /metrics is 200 with the
//             text, another path 404, another method 405, a head too large
//             431, a broken one 400. At most kMaxConnections at once; more
//             are closed at accept.
//
// `metrics:` is read through MetricsOptions::settings at attach and again
// every kTextfileInterval: a reload (SIGHUP, D-Bus Reload) that changes it
// opens, moves or closes the endpoint and the textfile within one interval,
// and the log says what changed. apply() does it at once.
//
// A failure of either (port in use, a directory that breaks the rules) is
// logged and the daemon goes on: metrics never stop swap from working.
// Every callback runs on the loop's thread; status() and settings() are
// called there.
#pragma once

#include <systemd/sd-event.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "common/result.hpp"
#include "config/spec.hpp"
#include "dbus/status.hpp"

namespace tierswap {

struct MetricsOptions {
  std::function<config::MetricsSettings()> settings;  // the config's `metrics:` now
  std::function<Status()> status;
  std::function<void(const std::string&)> info, warn;
};

inline constexpr std::chrono::seconds kTextfileInterval{2};
inline constexpr std::chrono::seconds kRequestTimeout{5};
inline constexpr std::size_t kMaxRequestBytes = 8192;
inline constexpr int kMaxConnections = 8;

class MetricsService {
 public:
  // The service, idle while `metrics:` sets nothing. Error (logged by the
  // caller): the timer could not be set up.
  static Result<std::unique_ptr<MetricsService>> attach(sd_event* loop, const HostFs& fs,
                                                        MetricsOptions opts);
  // Takes `settings` now when they differ from the ones in use (also done
  // by the timer with settings()).
  void apply(const config::MetricsSettings& settings);
  ~MetricsService();
  MetricsService(const MetricsService&) = delete;
  MetricsService& operator=(const MetricsService&) = delete;

  // Writes the textfile now (also done by the timer); nothing without one.
  Result<void> write_textfile();
  // The bound port; 0 without `listen` or when it could not be bound.
  [[nodiscard]] int port() const { return port_; }

 private:
  struct Connection;
  MetricsService(sd_event* loop, const HostFs& fs, MetricsOptions opts);
  Result<void> listen(const std::string& text);
  void stop_listening();
  void remove_textfile(const std::string& path);
  void on_timer();
  void accept_all();
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  void respond(Connection& c);
  void close(Connection& c);

  sd_event* loop_;
  const HostFs& fs_;
  MetricsOptions opts_;
  config::MetricsSettings current_;  // what is in use
  int listen_fd_ = -1;
  int port_ = 0;
  sd_event_source* listen_src_ = nullptr;
  sd_event_source* timer_src_ = nullptr;
  std::string last_textfile_error_;
  std::vector<std::unique_ptr<Connection>> conns_;
};

}  // namespace tierswap
