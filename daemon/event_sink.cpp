#include "daemon/event_sink.hpp"

namespace tierswap {

void EventSink::set(ManagerEvents events) {
  std::lock_guard lk(mu_);
  events_ = std::move(events);
}

void EventSink::state(const std::string& tier, TierState s) {
  std::lock_guard lk(mu_);
  if (events_.tier_state_changed) events_.tier_state_changed(tier, s);
}

void EventSink::progress(const std::string& tier, std::uint64_t moved, std::uint64_t total) {
  std::lock_guard lk(mu_);
  if (events_.progress) events_.progress(tier, moved, total);
}

void EventSink::action(const std::string& what, const std::string& why, const std::string& numbers,
                       bool log) {
  if (log && info_) info_(what + ": " + why);
  std::lock_guard lk(mu_);
  if (events_.policy_action) events_.policy_action(what, why, numbers);
}

void EventSink::pressure(const std::string& resource, double some_avg10, double full_avg10) {
  std::lock_guard lk(mu_);
  if (events_.pressure_alert) events_.pressure_alert(resource, some_avg10, full_avg10);
}

}  // namespace tierswap
