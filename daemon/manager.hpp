// Manager: the daemon's ManagerApi (what dbus/ forwards to), put together
// from its parts:
//
//   StatusObserver   one read of the machine -> Status + policy::Snapshot
//   TierControls     the tiers' exporters' control channels (runner, observer)
//   OperationRunner  reload, demote, promote, evacuate; one busy state;
//                    every line says who asked
//   PolicyLoop       policy::decide() on each observation -> the runner
//   EventSink        ManagerEvents (D-Bus signals) and the action log
//
// The daemon's loop calls tick() every 2 s and on each PSI trigger: one
// observation, the PressureAlert check and one decision on it; the Status
// it returns is that observation's (the D-Bus service publishes it).
//
// Thread-safety: every method may be called from the D-Bus thread and the
// main loop at once. Events are sent while the parts' locks are held; the
// DbusService only queues them (see dbus/service.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "daemon/engine.hpp"
#include "daemon/event_sink.hpp"
#include "daemon/operation_runner.hpp"
#include "daemon/policy_loop.hpp"
#include "daemon/signal_providers.hpp"
#include "daemon/status_observer.hpp"
#include "daemon/tier_controls.hpp"
#include "dbus/manager_api.hpp"
#include "policy/pressure_alert.hpp"

namespace tierswap {

struct ManagerOptions {
  std::string version = "0";
  // How often a running demote reads /proc/swaps for progress.
  std::chrono::milliseconds poll_interval{200};
  // Test hook: the clock that swap rates and snapshot times are computed against.
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  std::function<void(const std::string&)> info, warn;  // log sinks
  SignalProviders providers;                           // GPU, power
  // tierswapd --record: gets every snapshot decided on as a trace line.
  std::function<void(const std::string&)> record;
  // Test hook: the control channels of the tiers (unset: each tier's
  // plug-in, TierKind::control).
  TierControls::Factory control_factory;
};

class Manager final : public ManagerApi {
 public:
  Manager(Engine& engine, ManagerOptions opts = {});
  // Waits for a running demote (call abort_demote() first to cut it short).
  ~Manager() override;

  [[nodiscard]] Status status() override;
  Result<void> reload() override;
  Result<std::string> plan_json() override;
  Result<void> demote(const std::string& tier) override;
  Result<void> promote(const std::string& tier) override;
  Result<void> reload_as(std::optional<uid_t> uid) override;
  // On the operation runner's worker (the D-Bus loop keeps serving).
  Result<void> start_reload_as(std::optional<uid_t> uid, std::function<void(Result<void>)> done) override;
  Result<void> demote_as(const std::string& tier, std::optional<uid_t> uid) override;
  Result<void> promote_as(const std::string& tier, std::optional<uid_t> uid) override;
  void set_events(ManagerEvents events) override;

  // The daemon's state as Status.state says it ("starting", "running",
  // "reloading", "stopping").
  void set_state(std::string state);
  // Reload from the daemon itself (`why`: "SIGHUP") on the operation
  // runner's worker, like start_reload_as: EBUSY at once when something
  // runs; else `done` gets the number of steps applied, on the worker.
  Result<void> start_reload_steps(const std::string& why, std::function<void(Result<std::size_t>)> done);
  // Aborts a running demote (kills RealKernel's swapoff helper: the kernel
  // re-inserts the area). Returns whether one was running.
  bool abort_demote(const std::string& why);
  // Blocks until no operation runs.
  void wait_idle();
  [[nodiscard]] bool busy() const;

  // The loop's tick (and PSI trigger): one observation; PressureAlert when
  // "some avg10" of memory or io rises past the threshold (once per rise;
  // re-armed below the clear level, see policy/pressure_alert.hpp); then
  // policy::decide() on it, with the config's policy: settings. Returns the
  // Status of that same observation (with the decision's counters), for the
  // D-Bus properties: a tick reads the machine once.
  Status tick();
  // The PressureAlert check alone, on a fresh observation.
  void check_pressure();

  // The GPU watch, between ticks (the loop: every kGpuWatchInterval while it
  // says `watching`): the GPUs alone (NVML, about 20 us a card), and whether
  // a tier whose blocks are in VRAM just crossed the reserve or foreign rule
  // (policy::vram_rule). `tick_now`: the loop ticks at once, so that another
  // program taking the VRAM is acted on within the watch's interval instead
  // of the tick's. Edge-triggered per tier: a rule that keeps holding (an
  // evacuation refused, the rate limit) asks for one early tick, not one per
  // watch. `watching`: some vram tier has its blocks in VRAM.
  struct GpuWatch {
    bool watching = false;
    bool tick_now = false;
  };
  GpuWatch gpu_watch();

  // The exporters' figures answers, for the loop's fd watches (see
  // StatusObserver): only a tick sends requests (status() uses what has
  // arrived), so GetStatus never waits on an exporter either.
  [[nodiscard]] std::vector<std::pair<std::string, TierControl::FiguresWatch>> figures_watches() {
    return observer_.figures_watches();
  }
  bool figures_ready(const std::string& tier, std::uint64_t generation) {
    return observer_.take_ready(tier, generation);
  }

  // For callers that are neither D-Bus nor the policy engine (the suspend
  // guard, daemon/suspend_guard.hpp): the runner's evacuate and promote,
  // with their caller; and what the guard holds, for Status::suspend.
  Result<void> evacuate_for(const std::string& tier, const Caller& caller);
  Result<void> promote_for(const std::string& tier, const Caller& caller);
  void set_suspend(SuspendStatus s);

 private:
  Observation observe(bool poll_figures);
  // `s` with what the observation does not hold: version, state, counters.
  Status completed(Status s);
  void alert_pressure(const Status& s);

  Engine& engine_;
  ManagerOptions opts_;
  EventSink events_;
  TierControls controls_;
  OperationRunner runner_;
  StatusObserver observer_;
  PolicyLoop policy_;

  mutable std::mutex mu_;
  std::string state_ = "starting";
  SuspendStatus suspend_;

  std::mutex watch_mu_;
  std::set<std::string> watch_hot_;  // tiers over a vram rule at the last watch

  std::mutex pressure_mu_;
  policy::PressureAlertState memory_alert_, io_alert_;
};

}  // namespace tierswap
