#include "dbus/caller_access.hpp"

#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-bus.h>

#include <map>

#include "dbus/names.hpp"

namespace tierswap::dbus {

namespace {

// sdbus::Message keeps its sd_bus_message* protected; a pointer to that
// member, named through a derived class, reads it without any cast.
struct RawMessage : sdbus::Message {
  static sd_bus_message* of(const sdbus::Message& m) {
    constexpr auto member = &RawMessage::msg_;
    return static_cast<sd_bus_message*>(m.*member);
  }
};

// The sender's uid as the bus itself reports it (never augmented). dbus-daemon
// records the effective uid of the peer when it connected (SO_PEERCRED) and
// reports it as UnixUserID, which sd-bus files under EUID.
}  // namespace

Result<uid_t> caller_uid(const sdbus::Message& call) {
  sd_bus_message* m = RawMessage::of(call);
  sd_bus_creds* creds = nullptr;
  int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
  if (r < 0) return kernel_error(-r, "cannot get the caller's uid from the bus");
  uid_t uid = static_cast<uid_t>(-1);
  const std::uint64_t augmented = sd_bus_creds_get_augmented_mask(creds);
  r = sd_bus_creds_get_euid(creds, &uid);
  sd_bus_creds_unref(creds);
  if (r < 0) return kernel_error(-r, "the bus did not report the caller's uid");
  if (augmented & SD_BUS_CREDS_EUID)
    return fail(ErrorKind::permission_denied, "the caller's uid did not come from the bus");
  return uid;
}

namespace {

enum class Polkit { yes, no, absent };

Polkit ask_polkit(sdbus::IConnection& bus, const std::string& sender, const AccessPolicy& policy) {
  try {
    auto proxy =
        sdbus::createProxy(bus, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority");
    sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>> subject{
        "system-bus-name", std::map<std::string, sdbus::Variant>{{"name", sdbus::Variant(sender)}}};
    const std::map<std::string, std::string> details;
    const std::uint32_t allow_user_interaction = 1;
    sdbus::Struct<bool, bool, std::map<std::string, std::string>> result;
    proxy->callMethod("CheckAuthorization")
        .onInterface("org.freedesktop.PolicyKit1.Authority")
        .withTimeout(std::chrono::milliseconds(policy.polkit_timeout_ms))
        .withArguments(subject, std::string(kPolkitAction), details, allow_user_interaction, std::string())
        .storeResultsTo(result);
    return std::get<0>(result) ? Polkit::yes : Polkit::no;
  } catch (const sdbus::Error& e) {
    const auto& n = e.getName();
    if (n == "org.freedesktop.DBus.Error.ServiceUnknown" ||
        n == "org.freedesktop.DBus.Error.NameHasNoOwner") {
      return Polkit::absent;
    }
    return Polkit::no;
  }
}

}  // namespace

Result<void> authorize_caller(sdbus::IConnection& bus, const sdbus::Message& call, const std::string& method,
                              const AccessPolicy& policy) {
  auto uid = caller_uid(call);
  if (!uid) return fail(ErrorKind::permission_denied, method + " refused: " + uid.error().describe());
  if (*uid == 0) return {};
  const std::string who = "uid " + std::to_string(*uid);
  if (!policy.use_polkit) {
    return fail(ErrorKind::permission_denied,
                method + " is for root only (caller is " + who + "); run it with sudo");
  }
  switch (ask_polkit(bus, call.getSender(), policy)) {
    case Polkit::yes:
      return {};
    case Polkit::no:
      return fail(ErrorKind::permission_denied, method + " refused: polkit did not authorise " + who +
                                                    " for " + kPolkitAction +
                                                    " (run it with sudo, or as an administrator)");
    case Polkit::absent:
      break;
  }
  return fail(ErrorKind::permission_denied,
              method + " is for root only (caller is " + who +
                  ", and polkit is not running to authorise others); run it with sudo");
}

}  // namespace tierswap::dbus
