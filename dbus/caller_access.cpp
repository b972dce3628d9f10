#include "dbus/caller_access.hpp"

#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-bus.h>

#include <map>

#include "dbus/names.hpp"
#include "dbus/raw_message.hpp"

namespace tierswap::dbus {

// The sender's uid as the bus itself reports it (never augmented). dbus-daemon
// records the effective uid of the peer when it connected (SO_PEERCRED) and
// reports it as UnixUserID, which sd-bus files under EUID.
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

bool allows_interactive_authorization(const sdbus::Message& call) {
  return sd_bus_message_get_allow_interactive_authorization(RawMessage::of(call)) > 0;
}

namespace {

enum class Polkit { yes, no, absent };

using AuthResult = sdbus::Struct<bool, bool, std::map<std::string, std::string>>;

Result<void> verdict(Polkit p, const std::string& method, uid_t uid, bool interactive) {
  const std::string who = "uid " + std::to_string(uid);
  switch (p) {
    case Polkit::yes:
      return {};
    case Polkit::no:
      return fail(
          ErrorKind::permission_denied,
          method + " refused: polkit did not authorise " + who + " for " + kPolkitAction +
              (interactive ? "" : " without asking (the call did not allow interactive authorization)") +
              " (run it with sudo, or as an administrator)");
    case Polkit::absent:
      break;
  }
  return fail(ErrorKind::permission_denied,
              method + " is for root only (caller is " + who +
                  ", and polkit is not running to authorise others); run it with sudo");
}

}  // namespace

CallerAccess::CallerAccess(sdbus::IConnection& bus) : bus_(bus) {}

CallerAccess::~CallerAccess() {
  polkit_.reset();  // cancels the questions still open: their callbacks never run
}

void CallerAccess::authorize(const sdbus::Message& call, const std::string& method,
                             const AccessPolicy& policy, std::function<void(Result<void>)> done) {
  auto uid = caller_uid(call);
  if (!uid) return done(fail(ErrorKind::permission_denied, method + " refused: " + uid.error().describe()));
  if (*uid == 0) return done({});
  if (!policy.use_polkit) {
    return done(fail(ErrorKind::permission_denied, method + " is for root only (caller is uid " +
                                                       std::to_string(*uid) + "); run it with sudo"));
  }
  const bool interactive = allows_interactive_authorization(call);
  try {
    if (!polkit_)
      polkit_ =
          sdbus::createProxy(bus_, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority");
    sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>> subject{
        "system-bus-name", std::map<std::string, sdbus::Variant>{{"name", sdbus::Variant(call.getSender())}}};
    const std::map<std::string, std::string> details;
    // CheckAuthorization's flags: 1 = AllowUserInteraction.
    const std::uint32_t flags = interactive ? 1 : 0;
    const unsigned timeout_ms = interactive ? policy.interactive_timeout_ms : policy.timeout_ms;
    polkit_->callMethodAsync("CheckAuthorization")
        .onInterface("org.freedesktop.PolicyKit1.Authority")
        .withTimeout(std::chrono::milliseconds(timeout_ms))
        .withArguments(subject, std::string(kPolkitAction), details, flags, std::string())
        .uponReplyInvoke([done, method, uid = *uid, interactive](const sdbus::Error* e, AuthResult r) {
          Polkit p = Polkit::no;
          if (e == nullptr) {
            p = std::get<0>(r) ? Polkit::yes : Polkit::no;
          } else if (e->getName() == "org.freedesktop.DBus.Error.ServiceUnknown" ||
                     e->getName() == "org.freedesktop.DBus.Error.NameHasNoOwner") {
            p = Polkit::absent;
          }
          done(verdict(p, method, uid, interactive));
        });
  } catch (const sdbus::Error& e) {
    // The question could not even be sent (the connection is going away).
    done(verdict(Polkit::no, method, *uid, interactive));
  }
}

}  // namespace tierswap::dbus
