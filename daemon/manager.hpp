// Manager: the daemon's ManagerApi (what dbus/ forwards to), over the Engine.
//
//   status()  tiers from the last applied config + the journal (state,
//             device, priority) + /proc/swaps (size, used) + zram mm_stat
//             (stored, ratio); PSI, meminfo, swappiness, swap rates from two
//             /proc/vmstat samples (the previous one is kept; rates are over
//             at least 1 s).
//   reload()  Engine::reload (EINVAL with the diagnostics; EBUSY during a demote).
//   demote()  precheck (the room rule, policy/swap_room.hpp: the tier's used
//             bytes plus a margin must fit in what the OTHER active swap areas
//             can take, else ENOMEM with the numbers: pages that swapoff
//             brings back are charged to their cgroups, and a cgroup at
//             memory.max is OOM-killed rather than given RAM),
//             then Kernel::swapoff on a worker thread (RealKernel forks a
//             helper) without the engine lock, /proc/swaps Used polled every
//             200 ms -> progress events; active -> demoting -> drained (or
//             back to active, with a PolicyAction that says why).
//   promote() swapon of a drained tier at its priority (+discard).
//
// Thread-safety: every method may be called from the D-Bus thread and the
// main loop at once. Events are sent while the Manager's lock is held; the
// DbusService only queues them (see dbus/service.hpp).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "daemon/engine.hpp"
#include "dbus/manager_api.hpp"
#include "policy/pressure_alert.hpp"
#include "policy/vmstat.hpp"

namespace tierswap {

struct ManagerOptions {
  std::string version = "0";
  // How often a running demote reads /proc/swaps for progress.
  std::chrono::milliseconds poll_interval{200};
  // Test hook: the clock that swap rates are computed against.
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  std::function<void(const std::string&)> info, warn;  // log sinks
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
  void set_events(ManagerEvents events) override;

  // The daemon's state as Status.state says it ("starting", "running",
  // "reloading", "stopping").
  void set_state(std::string state);
  // Reload from the daemon itself (SIGHUP): like reload(), with the steps
  // applied counted; events sent the same way.
  Result<std::size_t> reload_steps(const std::string& why);
  // Aborts a running demote (kills RealKernel's swapoff helper: the kernel
  // re-inserts the area). Returns whether one was running.
  bool abort_demote(const std::string& why);
  // Blocks until no demote runs.
  void wait_idle();
  [[nodiscard]] bool busy() const;

  // Called on the daemon's observe tick: reads memory and I/O PSI and sends
  // PressureAlert when "some avg10" rises past the threshold (once per rise;
  // re-armed below the clear level, see policy/pressure_alert.hpp).
  void check_pressure();

 private:
  void run_demote(std::string tier, OwnedTier rec, std::uint64_t total);
  void emit_state(const std::string& tier, TierState s);
  void emit_action(const std::string& what, const std::string& why, const std::string& numbers);
  void emit_progress(const std::string& tier, std::uint64_t moved, std::uint64_t total);
  std::vector<std::string> tier_names();

  Engine& engine_;
  ManagerOptions opts_;

  mutable std::mutex mu_;  // everything below; never held while waiting on the engine's swapoff
  std::condition_variable cv_;
  ManagerEvents events_;  // under events_mu_
  std::string state_ = "starting";
  std::optional<std::string> op_;  // tier being demoted
  std::string abort_why_;
  std::thread worker_;

  std::mutex events_mu_;  // events_; taken after mu_ where both are held

  std::mutex pressure_mu_;
  policy::PressureAlertState memory_alert_, io_alert_;

  std::mutex rates_mu_;
  std::optional<policy::Vmstat> prev_vmstat_;
  std::chrono::steady_clock::time_point prev_time_{};
  policy::SwapRates rates_{};
};

}  // namespace tierswap
