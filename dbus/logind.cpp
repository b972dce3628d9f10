#include "dbus/logind.hpp"

#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

namespace tierswap::dbus {

namespace {

constexpr const char* kLogindName = "org.freedesktop.login1";
constexpr const char* kLogindPath = "/org/freedesktop/login1";
constexpr const char* kManager = "org.freedesktop.login1.Manager";
constexpr const char* kProperties = "org.freedesktop.DBus.Properties";

using Clock = std::chrono::steady_clock;

std::string where_of(const LogindOptions& o) {
  return o.address.empty() ? "the system bus" : o.address;
}

std::unique_ptr<sdbus::IConnection> open_bus(const LogindOptions& o) {
  return o.address.empty() ? sdbus::createSystemBusConnection()
                           : sdbus::createSessionBusConnectionWithAddress(o.address);
}

bool absent(const sdbus::Error& e) {
  return e.getName() == "org.freedesktop.DBus.Error.ServiceUnknown" ||
         e.getName() == "org.freedesktop.DBus.Error.NameHasNoOwner";
}

// Milliseconds until sd-bus's absolute CLOCK_MONOTONIC deadline (-1: none).
int poll_timeout_ms(std::uint64_t deadline_usec) {
  if (deadline_usec == UINT64_MAX) return -1;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const std::uint64_t now = static_cast<std::uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  if (deadline_usec <= now) return 0;
  return static_cast<int>(std::min<std::uint64_t>((deadline_usec - now + 999) / 1000, 60000));
}

constexpr const char* kDelayMax = "InhibitDelayMaxUSec";

// The property, or the error (absent: ENOENT; anything else: EIO).
Result<std::chrono::microseconds> read_delay_max(sdbus::IProxy& login1, const LogindOptions& o) {
  try {
    sdbus::Variant v;
    login1.callMethod("Get")
        .onInterface(kProperties)
        .withTimeout(o.call_timeout)
        .withArguments(std::string(kManager), std::string(kDelayMax))
        .storeResultsTo(v);
    return std::chrono::microseconds(v.get<std::uint64_t>());
  } catch (const sdbus::Error& e) {
    if (absent(e)) return fail(ENOENT, "logind (" + std::string(kLogindName) + ") is not on " + where_of(o));
    return fail(EIO, "logind's " + std::string(kDelayMax) + " on " + where_of(o) + ": " + e.getName() + ": " +
                         e.getMessage());
  }
}

}  // namespace

Inhibitor& Inhibitor::operator=(Inhibitor&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void Inhibitor::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

struct LogindClient::Impl {
  LogindOptions options;
  Callbacks cb;
  int wake_fd = -1;
  std::thread thread;
  std::mutex mu;  // the two below
  std::deque<std::function<void()>> jobs;
  bool stop = false;

  // The client's thread only.
  std::unique_ptr<sdbus::IConnection> bus;
  std::unique_ptr<sdbus::IProxy> login1, daemon;
  bool connected = false;  // logind answered and is on the bus
  std::string last_said;   // the last reason given to cb.connection(false, ...)

  void say(bool up, const std::string& why) {
    if (!up && why == last_said) return;  // a retry that fails the same way is not news
    last_said = up ? "" : why;
    if (cb.connection) cb.connection(up, why);
  }

  void drop(const std::string& why) {
    login1.reset();
    daemon.reset();
    bus.reset();
    if (connected || last_said != why) {
      connected = false;
      say(false, why);
    }
  }

  // logind answers a property read: it is there.
  bool probe_logind() {
    const std::string where = where_of(options);
    try {
      sdbus::Variant v;
      login1->callMethod("Get")
          .onInterface(kProperties)
          .withTimeout(options.call_timeout)
          .withArguments(std::string(kManager), std::string("PreparingForSleep"))
          .storeResultsTo(v);
    } catch (const sdbus::Error& e) {
      connected = false;
      say(false, absent(e) ? "logind (" + std::string(kLogindName) + ") is not on " + where
                           : "logind on " + where + ": " + e.getName() + ": " + e.getMessage());
      return false;
    }
    connected = true;
    say(true, "following logind's PrepareForSleep on " + where);
    if (cb.inhibit_delay_max)
      if (auto d = read_delay_max(*login1, options)) cb.inhibit_delay_max(*d);
    return true;
  }

  void try_connect() {
    const std::string where = where_of(options);
    try {
      bus = open_bus(options);
    } catch (const sdbus::Error& e) {
      bus.reset();
      say(false, "cannot connect to " + where + ": " + e.getMessage());
      return;
    }
    try {
      login1 = sdbus::createProxy(*bus, kLogindName, kLogindPath);
      login1->uponSignal("PrepareForSleep").onInterface(kManager).call([this](bool start) {
        if (cb.prepare_for_sleep) cb.prepare_for_sleep(start);
      });
      login1->finishRegistration();
      daemon = sdbus::createProxy(*bus, "org.freedesktop.DBus", "/org/freedesktop/DBus");
      daemon->uponSignal("NameOwnerChanged")
          .onInterface("org.freedesktop.DBus")
          .call([this](const std::string& name, const std::string&, const std::string& new_owner) {
            if (name != kLogindName) return;
            if (new_owner.empty()) {
              connected = false;
              say(false, "logind left " + where_of(options));
            } else {
              probe_logind();
            }
          });
      daemon->finishRegistration();
    } catch (const sdbus::Error& e) {
      drop("cannot subscribe to logind on " + where + ": " + e.getName() + ": " + e.getMessage());
      return;
    }
    // Subscribed first, then asked: logind arriving in between is not missed.
    probe_logind();
  }

  void inhibit(const std::string& what, const std::string& who, const std::string& why,
               const std::string& mode, const std::function<void(Result<Inhibitor>)>& done) {
    if (!bus || !connected) {
      done(fail(ENOTCONN,
                "no inhibitor lock: " + (last_said.empty() ? "logind is not reachable" : last_said)));
      return;
    }
    try {
      sdbus::UnixFd fd;
      login1->callMethod("Inhibit")
          .onInterface(kManager)
          .withTimeout(options.call_timeout)
          .withArguments(what, who, why, mode)
          .storeResultsTo(fd);
      done(Inhibitor(fd.release()));
    } catch (const sdbus::Error& e) {
      done(fail(
          EIO, "logind refused a " + mode + " lock on " + what + ": " + e.getName() + ": " + e.getMessage()));
    }
  }

  void run() {
    std::optional<Clock::time_point> next_try = Clock::now();
    for (;;) {
      std::deque<std::function<void()>> todo;
      {
        std::lock_guard lk(mu);
        if (stop) break;
        todo.swap(jobs);
      }
      if (!bus && next_try && Clock::now() >= *next_try) {
        try_connect();
        next_try = bus ? std::nullopt : std::optional(Clock::now() + options.retry);
      }
      for (auto& job : todo) job();
      if (bus) {
        try {
          while (bus->processPendingRequest()) {
          }
        } catch (const sdbus::Error& e) {
          drop("the connection to " + where_of(options) + " broke: " + e.getMessage());
          next_try = Clock::now() + options.retry;
        }
      }
      pollfd fds[2] = {{wake_fd, POLLIN, 0}, {-1, 0, 0}};
      nfds_t n = 1;
      int timeout = -1;
      if (bus) {
        const auto pd = bus->getEventLoopPollData();
        fds[1] = {pd.fd, pd.events, 0};
        n = 2;
        timeout = poll_timeout_ms(pd.timeout_usec);
      } else if (next_try) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*next_try - Clock::now());
        timeout = static_cast<int>(std::max<long long>(0, left.count()));
      }
      ::poll(fds, n, timeout);
      if (fds[0].revents & POLLIN) {
        std::uint64_t v = 0;
        (void)!::read(wake_fd, &v, sizeof v);
      }
    }
    login1.reset();
    daemon.reset();
    bus.reset();
  }

  void post(std::function<void()> job) {
    {
      std::lock_guard lk(mu);
      jobs.push_back(std::move(job));
    }
    const std::uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }
};

std::unique_ptr<LogindClient> LogindClient::start(LogindOptions options, Callbacks callbacks) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->cb = std::move(callbacks);
  impl->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  Impl* self = impl.get();
  impl->thread = std::thread([self] { self->run(); });
  return std::unique_ptr<LogindClient>(new LogindClient(std::move(impl)));
}

LogindClient::LogindClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LogindClient::~LogindClient() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->stop = true;
  }
  const std::uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

void LogindClient::inhibit(std::string what, std::string who, std::string why, std::string mode,
                           std::function<void(Result<Inhibitor>)> done) {
  Impl* self = impl_.get();
  impl_->post([self, what = std::move(what), who = std::move(who), why = std::move(why),
               mode = std::move(mode),
               done = std::move(done)] { self->inhibit(what, who, why, mode, done); });
}

Result<std::chrono::microseconds> inhibit_delay_max(const LogindOptions& options) {
  std::unique_ptr<sdbus::IConnection> bus;
  try {
    bus = open_bus(options);
  } catch (const sdbus::Error& e) {
    return fail(ENOTCONN, "cannot connect to " + where_of(options) + ": " + e.getMessage());
  }
  try {
    auto proxy = sdbus::createProxy(*bus, kLogindName, kLogindPath);
    return read_delay_max(*proxy, options);
  } catch (const sdbus::Error& e) {
    return fail(EIO, "logind on " + where_of(options) + ": " + e.getName() + ": " + e.getMessage());
  }
}

Result<std::vector<InhibitorInfo>> list_inhibitors(const LogindOptions& options) {
  const std::string where = where_of(options);
  std::unique_ptr<sdbus::IConnection> bus;
  try {
    bus = open_bus(options);
  } catch (const sdbus::Error& e) {
    return fail(ENOTCONN, "cannot connect to " + where + ": " + e.getMessage());
  }
  try {
    auto proxy = sdbus::createProxy(*bus, kLogindName, kLogindPath);
    std::vector<
        sdbus::Struct<std::string, std::string, std::string, std::string, std::uint32_t, std::uint32_t>>
        list;
    proxy->callMethod("ListInhibitors")
        .onInterface(kManager)
        .withTimeout(options.call_timeout)
        .storeResultsTo(list);
    std::vector<InhibitorInfo> out;
    for (const auto& s : list)
      out.push_back(
          {std::get<0>(s), std::get<1>(s), std::get<2>(s), std::get<3>(s), std::get<4>(s), std::get<5>(s)});
    return out;
  } catch (const sdbus::Error& e) {
    if (absent(e)) return fail(ENOENT, "logind (" + std::string(kLogindName) + ") is not on " + where);
    return fail(EIO, "logind's ListInhibitors on " + where + ": " + e.getName() + ": " + e.getMessage());
  }
}

}  // namespace tierswap::dbus
