// Who may call the mutating methods (Reload, Demote, Promote).
//
// The uid comes from the bus's own record of the sender (sd-bus asks the bus
// driver; values sd-bus could only get by reading /proc, "augmented" ones,
// are refused because the sender could have exec'd something else by then).
// uid 0 is allowed. Anyone else is allowed only when polkit runs on the bus
// and authorises the sender for org.tierswap.manage; without polkit: root only.
//
// polkit is asked asynchronously: the service's loop keeps serving (other
// callers' GetStatus, properties) while polkit decides, which may take as
// long as a person needs to type a password into an authentication agent.
// Interaction is allowed only when the calling message carries
// ALLOW_INTERACTIVE_AUTHORIZATION (the D-Bus header flag a client sets when
// someone is there to answer, as `tierswapctl` does on a terminal and
// `busctl --allow-interactive-authorization` does); otherwise polkit answers
// from its rules alone.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace sdbus {
class IConnection;
class IProxy;
class Message;
}  // namespace sdbus

namespace tierswap::dbus {

struct AccessPolicy {
  bool use_polkit = true;
  // How long polkit may take: with interaction (a person answers an agent),
  // and without (polkit's rules alone).
  unsigned interactive_timeout_ms = 60'000;
  unsigned timeout_ms = 25'000;
};

// The sender's uid as the bus reports it (see above); an error when the bus
// did not say or the value was augmented.
Result<uid_t> caller_uid(const sdbus::Message& call);

// Whether the caller set ALLOW_INTERACTIVE_AUTHORIZATION on `call`.
bool allows_interactive_authorization(const sdbus::Message& call);

// The access check, on the connection the service serves on. Loop thread only
// (the thread that processes `bus`).
class CallerAccess {
 public:
  explicit CallerAccess(sdbus::IConnection& bus);
  // Checks still waiting for polkit are dropped: their `done` is never called.
  ~CallerAccess();

  // Decides whether the sender of `call` may run `method`; `done` gets Ok, or
  // EPERM (permission_denied) with a message that names the method and the
  // caller's uid and says what would be needed. Root and "no polkit" are
  // decided before this returns (done runs inside it); a polkit question is
  // answered later, from the connection's processing on the loop.
  void authorize(const sdbus::Message& call, const std::string& method, const AccessPolicy& policy,
                 std::function<void(Result<void>)> done);

  CallerAccess(const CallerAccess&) = delete;
  CallerAccess& operator=(const CallerAccess&) = delete;

 private:
  sdbus::IConnection& bus_;
  std::unique_ptr<sdbus::IProxy> polkit_;  // made at the first question
};

}  // namespace tierswap::dbus
