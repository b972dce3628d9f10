// ScriptedManager: a ManagerApi for testing the D-Bus layer (not the daemon).
// Its Status comes from a JSON file (the status document); every call it
// receives is appended to a log file, one line each ("demote fast"), so a
// test can see what reached the manager and what did not.
//
// demote(t): state demoting, then `steps` Progress events `step_ms` apart
// moving the tier's used bytes, then drained (used 0) plus a PolicyAction.
// promote(t): active at once. Tiers listed in enomem_tiers refuse demote
// with ENOMEM; reload_error makes reload() fail with EINVAL.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dbus/manager_api.hpp"

namespace tierswap::test {

class ScriptedManager final : public ManagerApi {
 public:
  ScriptedManager(Status status, std::string log_path);
  ~ScriptedManager() override;

  Status status() override;
  Result<void> reload() override;
  Result<std::string> plan_json() override;
  Result<void> demote(const std::string& tier) override;
  Result<void> promote(const std::string& tier) override;
  void set_events(ManagerEvents events) override;

  std::set<std::string> enomem_tiers;
  std::string reload_error;
  int steps = 5;
  int step_ms = 40;

 private:
  void log(const std::string& line);
  TierStatus* find(const std::string& name);

  std::mutex mu_;
  Status status_;
  ManagerEvents events_;
  std::string log_path_;
  std::vector<std::thread> workers_;
};

}  // namespace tierswap::test
