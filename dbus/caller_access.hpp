// Who may call the mutating methods (Reload, Demote, Promote).
//
// The uid comes from the bus's own record of the sender (sd-bus asks the bus
// driver; values sd-bus could only get by reading /proc, "augmented" ones,
// are refused because the sender could have exec'd something else by then).
// uid 0 is allowed. Anyone else is allowed only when polkit runs on the bus
// and authorises the sender for org.tierswap.manage; without polkit: root only.
//
// Runs on the service's loop, inside the method handler; the polkit
// call is synchronous (with user interaction allowed, so an agent may ask for
// a password while the loop waits, up to the polkit timeout).
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.hpp"

namespace sdbus {
class IConnection;
class Message;
}  // namespace sdbus

namespace tierswap::dbus {

struct AccessPolicy {
  bool use_polkit = true;
  unsigned polkit_timeout_ms = 60'000;
};

// The sender's uid as the bus reports it (see above); an error when the bus
// did not say or the value was augmented.
Result<uid_t> caller_uid(const sdbus::Message& call);

// Ok, or EPERM with a message that names the method and the caller's uid
// and says what would be needed.
Result<void> authorize_caller(sdbus::IConnection& bus, const sdbus::Message& call, const std::string& method,
                              const AccessPolicy& policy);

}  // namespace tierswap::dbus
