// Engine: the daemon's core, shared by the signal loop (daemon.cpp) and the
// D-Bus Manager: load the config, observe, plan, apply, journal, teardown.
//
// Thread-safety: every public method takes the engine's lock, so the D-Bus
// thread and the main loop may call concurrently; an apply holds the lock
// for its whole duration (a second caller waits).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/common/plan.hpp"
#include "backends/common/result.hpp"
#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/kernel.hpp"
#include "config/spec.hpp"
#include "daemon/journal.hpp"
#include "daemon/planner.hpp"

namespace tierswap {

struct EngineOptions {
  std::string root = "/";
  std::optional<std::string> config;  // --config; unset: /etc/tierswap.yaml, else the embedded default
  bool keep_on_exit = false;
  int fail_step = 0;  // test hook (TIERSWAP_TEST_FAIL_STEP)
  std::function<void(const std::string&)> info, warn;  // log sinks
};

// A loaded config, or every diagnostic as printable lines in the error.
struct LoadedConfig {
  config::Spec spec;
  std::vector<config::Diagnostic> warnings;
};

class Engine {
 public:
  // kernel null: the real kernel.
  explicit Engine(EngineOptions opts, std::unique_ptr<swap::Kernel> kernel = nullptr);

  // Loads the journal, reconciles it with the machine (adopting what is
  // still there), then applies the config. On failure everything this call
  // did is undone and the error says why.
  Result<void> start();
  // Re-reads the config and applies the difference. Returns the number of
  // steps applied (0: nothing to do). On failure the previous state stays.
  Result<std::size_t> reload();
  // Undoes everything in the journal (unless keep_on_exit).
  Result<void> stop();
  // The plan reload() would apply now.
  Result<Plan> plan();

  [[nodiscard]] std::string config_source() const;
  [[nodiscard]] const HostFs& fs() const { return fs_; }
  [[nodiscard]] Journal journal() const;
  swap::Kernel& kernel() { return *kernel_; }
  std::mutex& mutex() { return mu_; }

 private:
  Result<LoadedConfig> load();
  Result<Plan> plan_locked(const LoadedConfig& cfg);
  Result<std::size_t> apply_locked();

  EngineOptions opts_;
  HostFs fs_;
  std::unique_ptr<swap::Kernel> kernel_;
  mutable std::mutex mu_;
  Journal journal_;
  std::string source_;
};

}  // namespace tierswap
