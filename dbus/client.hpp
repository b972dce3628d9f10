// BusClient: tierswapctl's side of org.tierswap.Manager1 (generated proxy
// underneath). Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS honoured).
//
// Every call returns CallError on failure, already sorted into what
// tierswapctl's exit status needs (see kind) and carrying the D-Bus error
// name, so messages can show it.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace tierswap::dbus {

struct CallError {
  enum Kind {
    no_bus,     // the system bus itself is not reachable
    no_daemon,  // nobody owns org.tierswap.Manager1
    denied,     // org.tierswap.Error.AccessDenied or the bus policy said no
    failed,     // any other error from the daemon
  };
  Kind kind = failed;
  std::string name;                     // "org.tierswap.Error.NoSuchTier"
  std::string message;                  // the daemon's message, or ours for no_bus / no_daemon
  ErrorKind error = ErrorKind::failed;  // the daemon's error kind, read from the name (dbus/names.hpp)
};

template <class T>
using CallResult = std::expected<T, CallError>;

// Signals of the manager object, for demote/promote progress.
struct ManagerSignals {
  std::function<void(const std::string& tier, const std::string& state)> tier_state_changed;
  std::function<void(const std::string& tier, std::uint64_t moved, std::uint64_t total)> progress;
  std::function<void(const std::string& what, const std::string& why, const std::string& numbers)>
      policy_action;
};

class BusClient {
 public:
  static CallResult<std::unique_ptr<BusClient>> connect();
  ~BusClient();

  // Reload, Demote and Promote carry ALLOW_INTERACTIVE_AUTHORIZATION (polkit
  // may ask the caller for a password through an agent) when this is on:
  // by default when stdin is a terminal, as systemctl does.
  void allow_interactive_authorization(bool allow);

  CallResult<std::string> get_status_json();
  CallResult<void> reload();
  CallResult<void> demote(const std::string& tier);
  CallResult<void> promote(const std::string& tier);

  // Subscribes to the manager's signals now (before the call they follow);
  // they are delivered on a bus thread once start_events() runs.
  void subscribe(ManagerSignals handlers);
  void start_events();

  struct Impl;

 private:
  explicit BusClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierswap::dbus
