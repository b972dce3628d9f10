// Caller: who asked for an operation, as the log and PolicyAction's `why`
// name it. The operation runner is called by D-Bus, by signals and by the
// policy engine alike; every line it writes says which.
//
//   Caller::dbus(1000)          "uid 1000 over D-Bus"
//   Caller::signal("SIGHUP")    "SIGHUP"
//   Caller::policy("reserve", why)   "daemon policy rule \"reserve\" (why)"
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace tierswap {

struct Caller {
  std::string who;
  // Why, when the caller is the policy engine: decide()'s sentence with the
  // numbers ("free VRAM 512 MiB < reserve 1.0 GiB"); empty otherwise.
  std::string reason;
  // A person asked (D-Bus, a signal): the policy engine holds off while
  // such an operation runs (Snapshot::user_demote_running).
  bool user = true;

  static Caller dbus(std::optional<uid_t> uid) {
    return {uid ? "uid " + std::to_string(*uid) + " over D-Bus" : "a caller over D-Bus", "", true};
  }
  static Caller signal(const std::string& name) { return {name, "", true}; }
  static Caller policy(const std::string& rule, std::string reason = {}) {
    return {"daemon policy rule \"" + rule + "\"", std::move(reason), false};
  }
  // "uid 1000 over D-Bus", or "daemon policy rule \"reserve\" (free VRAM ...)".
  [[nodiscard]] std::string describe() const { return reason.empty() ? who : who + " (" + reason + ")"; }
};

}  // namespace tierswap
