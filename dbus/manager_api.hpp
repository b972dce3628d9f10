// ManagerApi: what the daemon offers its front ends (the D-Bus adaptor in
// dbus/). The daemon's Manager implements it; dbus/ only forwards to it.
//
// Thread-safety: every method may be called from the D-Bus thread while the
// daemon's main loop runs; implementations serialise internally.
//
// Errors: Error.kind says which D-Bus error name the front end uses
// (dbus::error_name_for in dbus/names.hpp): invalid_config -> InvalidConfig,
// invalid_argument -> InvalidArgument, not_found -> NoSuchTier, busy -> Busy,
// not_enough_memory -> NotEnoughMemory (demote precheck refused),
// permission_denied -> AccessDenied, any other kind -> Failed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "dbus/status.hpp"

namespace tierswap {

// Events the daemon reports to its front ends (D-Bus signals).
struct ManagerEvents {
  std::function<void(const std::string& tier, TierState state)> tier_state_changed;
  // Demote/promote progress: pages moved so far out of total (0 when unknown).
  std::function<void(const std::string& tier, std::uint64_t moved_bytes, std::uint64_t total_bytes)> progress;
  // what: "demote", "promote", ...; why: a sentence; numbers: JSON object text.
  std::function<void(const std::string& what, const std::string& why, const std::string& numbers)>
      policy_action;
  std::function<void(const std::string& resource, double some_avg10, double full_avg10)> pressure_alert;
};

class ManagerApi {
 public:
  virtual ~ManagerApi() = default;

  [[nodiscard]] virtual Status status() = 0;
  // Re-reads the config and applies the difference (as SIGHUP does).
  virtual Result<void> reload() = 0;
  // The plan that Reload() would apply now, as JSON (same as `tierswapctl plan --json`).
  virtual Result<std::string> plan_json() = 0;
  // Starts moving the tier's pages out (precheck first; refusal -> ENOMEM with
  // the numbers). Returns once started; progress and the end come as events.
  virtual Result<void> demote(const std::string& tier) = 0;
  // Puts a drained tier back at its priority.
  virtual Result<void> promote(const std::string& tier) = 0;

  // The same three, saying who asks: the uid the bus reports for the
  // caller (nullopt: unknown). The daemon names the caller in its log and
  // in PolicyAction ("uid 1000 over D-Bus"); an implementation that does
  // not keep the defaults, which forward.
  virtual Result<void> reload_as(std::optional<uid_t> uid) {
    (void)uid;
    return reload();
  }
  // Reload without waiting for it: starts it (or says why not: busy, with
  // what runs) and returns; `done` gets the reload's result once it has
  // ended, on whatever thread ran it (never inside this call in the daemon:
  // the apply runs on its operation runner's worker). The default runs
  // reload_as() here and calls `done` before returning.
  virtual Result<void> start_reload_as(std::optional<uid_t> uid, std::function<void(Result<void>)> done) {
    done(reload_as(uid));
    return {};
  }
  virtual Result<void> demote_as(const std::string& tier, std::optional<uid_t> uid) {
    (void)uid;
    return demote(tier);
  }
  virtual Result<void> promote_as(const std::string& tier, std::optional<uid_t> uid) {
    (void)uid;
    return promote(tier);
  }

  // Front ends register here once, before the first call.
  virtual void set_events(ManagerEvents events) = 0;
};

}  // namespace tierswap
