// EventSink: where the daemon's events go: the front ends' ManagerEvents
// (D-Bus signals) and, for PolicyAction, the log too.
//
// Thread-safety: every method may be called from any thread (the demote
// worker, the loop); one lock serialises them. The callbacks only queue
// (dbus/service.hpp), so they are called with that lock held.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "dbus/manager_api.hpp"

namespace tierswap {

class EventSink {
 public:
  using Log = std::function<void(const std::string&)>;
  explicit EventSink(Log info = {}) : info_(std::move(info)) {}

  void set(ManagerEvents events);

  void state(const std::string& tier, TierState s);
  void progress(const std::string& tier, std::uint64_t moved, std::uint64_t total);
  // Logs "what: why" at info (unless the caller logged it already, at its
  // own level), then sends PolicyAction(what, why, numbers).
  void action(const std::string& what, const std::string& why, const std::string& numbers, bool log = true);
  void pressure(const std::string& resource, double some_avg10, double full_avg10);

 private:
  Log info_;
  std::mutex mu_;
  ManagerEvents events_;
};

}  // namespace tierswap
