#include "dbus/upower.hpp"

#include <sdbus-c++/sdbus-c++.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <vector>

namespace tierswap::dbus {

namespace {

constexpr const char* kUPowerName = "org.freedesktop.UPower";
constexpr const char* kUPowerPath = "/org/freedesktop/UPower";
constexpr const char* kUPowerInterface = "org.freedesktop.UPower";
constexpr const char* kProperties = "org.freedesktop.DBus.Properties";

// -1 unknown (UPower off the bus), 0 on AC, 1 on battery.
int encode(std::optional<bool> v) {
  return v ? (*v ? 1 : 0) : -1;
}

std::optional<bool> decode(int v) {
  if (v < 0) return std::nullopt;
  return v == 1;
}

}  // namespace

struct UPowerClient::Impl {
  UPowerOptions options;
  OnChange on_change;
  std::atomic<int> state{-1};
  std::unique_ptr<sdbus::IConnection> bus;
  std::unique_ptr<sdbus::IProxy> upower;
  std::unique_ptr<sdbus::IProxy> daemon;  // org.freedesktop.DBus: NameOwnerChanged
  std::mutex pending_mutex;
  std::vector<sdbus::PendingAsyncCall> pending;  // re-reads in flight

  // Bus thread (or connect(), before the thread runs).
  void set(std::optional<bool> v) {
    const int now = encode(v);
    if (state.exchange(now) != now && on_change) on_change(v);
  }

  // Asynchronous Get of OnBattery (bus thread: never blocks it).
  void reread() {
    auto call = upower->callMethodAsync("Get")
                    .onInterface(kProperties)
                    .withArguments(std::string(kUPowerInterface), std::string("OnBattery"))
                    .uponReplyInvoke([this](const sdbus::Error* e, sdbus::Variant v) {
                      if (e) return;  // gone again: NameOwnerChanged says so
                      try {
                        set(v.get<bool>());
                      } catch (const sdbus::Error&) {
                      }
                    });
    std::lock_guard lock(pending_mutex);
    std::erase_if(pending, [](const sdbus::PendingAsyncCall& c) { return !c.isPending(); });
    pending.push_back(std::move(call));
  }

  void on_properties_changed(const std::string& interface,
                             const std::map<std::string, sdbus::Variant>& changed,
                             const std::vector<std::string>& invalidated) {
    if (interface != kUPowerInterface) return;
    if (auto it = changed.find("OnBattery"); it != changed.end()) {
      try {
        set(it->second.get<bool>());
      } catch (const sdbus::Error&) {
      }
      return;
    }
    for (const auto& name : invalidated)
      if (name == "OnBattery") reread();
  }

  void on_name_owner_changed(const std::string& name, const std::string&, const std::string& new_owner) {
    if (name != kUPowerName) return;
    if (new_owner.empty())
      set(std::nullopt);
    else
      reread();
  }
};

Result<std::unique_ptr<UPowerClient>> UPowerClient::connect(UPowerOptions options, OnChange on_change) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->on_change = std::move(on_change);
  const std::string where = impl->options.address.empty() ? "the system bus" : impl->options.address;
  try {
    impl->bus = impl->options.address.empty()
                    ? sdbus::createSystemBusConnection()
                    : sdbus::createSessionBusConnectionWithAddress(impl->options.address);
  } catch (const sdbus::Error& e) {
    return fail(ENOTCONN, "UPower: cannot connect to " + where + ": " + e.getMessage());
  }
  Impl* self = impl.get();
  try {
    impl->upower = sdbus::createProxy(*impl->bus, kUPowerName, kUPowerPath);
    impl->upower->uponSignal("PropertiesChanged")
        .onInterface(kProperties)
        .call([self](const std::string& interface, const std::map<std::string, sdbus::Variant>& changed,
                     const std::vector<std::string>& invalidated) {
          self->on_properties_changed(interface, changed, invalidated);
        });
    impl->upower->finishRegistration();
    impl->daemon = sdbus::createProxy(*impl->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus");
    impl->daemon->uponSignal("NameOwnerChanged")
        .onInterface("org.freedesktop.DBus")
        .call([self](const std::string& name, const std::string& old_owner, const std::string& new_owner) {
          self->on_name_owner_changed(name, old_owner, new_owner);
        });
    impl->daemon->finishRegistration();
  } catch (const sdbus::Error& e) {
    return fail(EIO, "UPower: cannot subscribe on " + where + ": " + e.getName() + ": " + e.getMessage());
  }
  // Subscribed first, then read: a change in between is not lost.
  try {
    sdbus::Variant v;
    impl->upower->callMethod("Get")
        .onInterface(kProperties)
        .withTimeout(impl->options.call_timeout)
        .withArguments(std::string(kUPowerInterface), std::string("OnBattery"))
        .storeResultsTo(v);
    impl->state = encode(v.get<bool>());
  } catch (const sdbus::Error& e) {
    const bool absent = e.getName() == "org.freedesktop.DBus.Error.ServiceUnknown" ||
                        e.getName() == "org.freedesktop.DBus.Error.NameHasNoOwner";
    if (absent) return fail(ENOENT, "UPower (" + std::string(kUPowerName) + ") is not on " + where);
    return fail(EIO, "UPower: reading OnBattery on " + where + ": " + e.getName() + ": " + e.getMessage());
  }
  try {
    impl->bus->enterEventLoopAsync();
  } catch (const sdbus::Error& e) {
    return fail(EIO, "UPower: cannot start the bus thread: " + e.getMessage());
  }
  return std::unique_ptr<UPowerClient>(new UPowerClient(std::move(impl)));
}

UPowerClient::UPowerClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

UPowerClient::~UPowerClient() {
  try {
    impl_->bus->leaveEventLoop();  // joins the bus thread
  } catch (const sdbus::Error&) {
  }
  {
    std::lock_guard lock(impl_->pending_mutex);
    for (auto& c : impl_->pending) c.cancel();
  }
  impl_->daemon.reset();
  impl_->upower.reset();
  impl_->bus.reset();
}

std::optional<bool> UPowerClient::on_battery() const {
  return decode(impl_->state.load());
}

}  // namespace tierswap::dbus
