#include "tests/dbus/fake_manager.hpp"

#include <chrono>
#include <fstream>

namespace tierswap::test {

ScriptedManager::ScriptedManager(Status status, std::string log_path)
    : status_(std::move(status)), log_path_(std::move(log_path)) {}

ScriptedManager::~ScriptedManager() {
  for (auto& t : workers_) t.join();
}

void ScriptedManager::log(const std::string& line) {
  std::ofstream(log_path_, std::ios::app) << line << '\n';
}

TierStatus* ScriptedManager::find(const std::string& name) {
  for (auto& t : status_.tiers)
    if (t.name == name) return &t;
  return nullptr;
}

Status ScriptedManager::status() {
  std::lock_guard lock(mu_);
  return status_;
}

Result<void> ScriptedManager::reload() {
  log("reload");
  if (!reload_error.empty()) return fail(EINVAL, reload_error);
  return {};
}

Result<std::string> ScriptedManager::plan_json() {
  return std::string(R"({"steps":[]})");
}

Result<void> ScriptedManager::demote(const std::string& tier) {
  log("demote " + tier);
  ManagerEvents ev;
  std::uint64_t total = 0;
  {
    std::lock_guard lock(mu_);
    TierStatus* t = find(tier);
    if (!t) return fail(ENOENT, "no tier named \"" + tier + "\"");
    if (enomem_tiers.count(tier)) {
      return fail(ENOMEM,
                  "demote of " + tier + " refused: 3.0 GiB used, only 1.0 GiB free in the other swap areas");
    }
    if (t->state == TierState::demoting) return fail(EBUSY, "a demote of " + tier + " is already running");
    t->state = TierState::demoting;
    total = t->used_bytes;
    ev = events_;
  }
  if (ev.tier_state_changed) ev.tier_state_changed(tier, TierState::demoting);
  workers_.emplace_back([this, tier, total, ev] {
    for (int i = 1; i <= steps; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
      if (ev.progress) ev.progress(tier, total * i / steps, total);
    }
    {
      std::lock_guard lock(mu_);
      if (TierStatus* t = find(tier)) {
        t->state = TierState::drained;
        t->used_bytes = 0;
        t->stored_bytes = 0;
      }
    }
    if (ev.policy_action) {
      ev.policy_action("demote", "tier " + tier + " drained on request",
                       R"({"tier":")" + tier + R"(","moved_bytes":)" + std::to_string(total) + "}");
    }
    if (ev.tier_state_changed) ev.tier_state_changed(tier, TierState::drained);
  });
  return {};
}

Result<void> ScriptedManager::promote(const std::string& tier) {
  log("promote " + tier);
  ManagerEvents ev;
  {
    std::lock_guard lock(mu_);
    TierStatus* t = find(tier);
    if (!t) return fail(ENOENT, "no tier named \"" + tier + "\"");
    t->state = TierState::active;
    ev = events_;
  }
  if (ev.tier_state_changed) ev.tier_state_changed(tier, TierState::active);
  return {};
}

void ScriptedManager::set_events(ManagerEvents events) {
  std::lock_guard lock(mu_);
  events_ = std::move(events);
}

}  // namespace tierswap::test
