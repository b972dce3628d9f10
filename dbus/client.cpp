#include "dbus/client.hpp"

#include <sdbus-c++/sdbus-c++.h>
#include <unistd.h>

#include <cstdlib>

#include "dbus/manager1_proxy.h"
#include "dbus/names.hpp"
#include "dbus/raw_message.hpp"

namespace tierswap::dbus {

namespace {

class ManagerProxy final : public sdbus::ProxyInterfaces<org::tierswap::Manager1_proxy> {
 public:
  ManagerProxy(sdbus::IConnection& bus, ManagerSignals s)
      : ProxyInterfaces(bus, kBusName, kManagerPath), s_(std::move(s)) {
    registerProxy();
  }
  ~ManagerProxy() { unregisterProxy(); }

 private:
  void onTierStateChanged(const std::string& tier, const std::string& state) override {
    if (s_.tier_state_changed) s_.tier_state_changed(tier, state);
  }
  void onPolicyAction(const std::string& what, const std::string& why, const std::string& numbers) override {
    if (s_.policy_action) s_.policy_action(what, why, numbers);
  }
  void onPressureAlert(const std::string&, const double&, const double&) override {}
  void onProgress(const std::string& tier, const uint64_t& moved, const uint64_t& total) override {
    if (s_.progress) s_.progress(tier, moved, total);
  }
  ManagerSignals s_;
};

std::string bus_address() {
  const char* a = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
  return a && *a ? a : "unix:path=/run/dbus/system_bus_socket";
}

CallError to_call_error(const sdbus::Error& e) {
  const std::string& n = e.getName();
  CallError c{
      .kind = CallError::failed, .name = n, .message = e.getMessage(), .error = error_kind_for_name(n)};
  if (n == "org.freedesktop.DBus.Error.ServiceUnknown" || n == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
      n == "org.freedesktop.DBus.Error.NoReply" || n == "org.freedesktop.DBus.Error.Disconnected") {
    c.kind = CallError::no_daemon;
    c.message = "tierswapd is not running (nobody owns " + std::string(kBusName) +
                " on the system bus): start it with `systemctl start tierswapd`, or run `tierswapd` as root";
  } else if (c.error == ErrorKind::permission_denied || n == "org.freedesktop.DBus.Error.AccessDenied") {
    c.kind = CallError::denied;
  }
  return c;
}

}  // namespace

struct BusClient::Impl {
  std::unique_ptr<sdbus::IConnection> bus;
  std::unique_ptr<sdbus::IProxy> plain;        // method calls
  std::unique_ptr<ManagerProxy> with_signals;  // after subscribe()
  bool loop_running = false;
  // Someone is at a terminal to answer polkit's agent (see the header).
  bool interactive = ::isatty(STDIN_FILENO) == 1;

  template <class F>
  auto guarded(F&& f) -> CallResult<decltype(f())> {
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        return {};
      } else {
        return f();
      }
    } catch (const sdbus::Error& e) {
      return std::unexpected(to_call_error(e));
    }
  }
  CallResult<std::string> call_s(const char* method) {
    return guarded([&] {
      std::string out;
      plain->callMethod(method).onInterface(kManagerInterface).storeResultsTo(out);
      return out;
    });
  }
  CallResult<void> call_v(const char* method, const std::string* arg) {
    return guarded([&] {
      auto m = plain->createMethodCall(kManagerInterface, method);
      sd_bus_message_set_allow_interactive_authorization(RawMessage::of(m), interactive ? 1 : 0);
      if (arg) m << *arg;
      plain->callMethod(m);
    });
  }
};

BusClient::BusClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BusClient::~BusClient() {
  if (impl_ && impl_->loop_running) {
    try {
      impl_->bus->leaveEventLoop();
    } catch (const sdbus::Error&) {
    }
  }
}

CallResult<std::unique_ptr<BusClient>> BusClient::connect() {
  auto impl = std::make_unique<Impl>();
  try {
    impl->bus = sdbus::createSystemBusConnection();
    impl->plain = sdbus::createProxy(*impl->bus, kBusName, kManagerPath);
  } catch (const sdbus::Error& e) {
    return std::unexpected(CallError{CallError::no_bus, e.getName(),
                                     "cannot reach the system bus at " + bus_address() + " (" +
                                         e.getMessage() +
                                         "): is dbus running (`systemctl start dbus`)? "
                                         "DBUS_SYSTEM_BUS_ADDRESS sets another address"});
  }
  return std::unique_ptr<BusClient>(new BusClient(std::move(impl)));
}

CallResult<std::string> BusClient::get_status_json() {
  return impl_->call_s("GetStatus");
}
void BusClient::allow_interactive_authorization(bool allow) {
  impl_->interactive = allow;
}

CallResult<void> BusClient::reload() {
  return impl_->call_v("Reload", nullptr);
}
CallResult<void> BusClient::demote(const std::string& tier) {
  return impl_->call_v("Demote", &tier);
}
CallResult<void> BusClient::promote(const std::string& tier) {
  return impl_->call_v("Promote", &tier);
}

void BusClient::subscribe(ManagerSignals handlers) {
  impl_->with_signals = std::make_unique<ManagerProxy>(*impl_->bus, std::move(handlers));
}

void BusClient::start_events() {
  if (impl_->loop_running) return;
  impl_->bus->enterEventLoopAsync();
  impl_->loop_running = true;
}

}  // namespace tierswap::dbus
