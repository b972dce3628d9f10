// OperationRunner: the operations that change the tiers at run time —
// reload, demote, promote, and the policy engine's evacuate and promote —
// with ONE busy state: while any of them runs, every other one is refused
// with EBUSY naming what runs and who asked for it. D-Bus, signals and the
// policy engine all come through here, and every log line and PolicyAction
// says who asked (caller.hpp).
//
//   reload(caller)           Engine::reload; the number of steps applied.
//   start_reload(caller, done)  the same on the worker thread (D-Bus Reload:
//                            the bus keeps serving while it applies).
//   demote(tier, caller)     precheck (the room rule, policy/swap_room.hpp:
//                            the tier's used bytes plus a margin must fit in
//                            what the OTHER active swap areas can take, else
//                            ENOMEM with the numbers: pages that swapoff
//                            brings back are charged to their cgroups, and a
//                            cgroup at memory.max is OOM-killed rather than
//                            given RAM), then Kernel::swapoff on a worker
//                            thread (RealKernel forks a helper) without the
//                            engine lock, /proc/swaps Used polled every
//                            poll_interval -> progress events; active ->
//                            demoting -> drained (or back to active, with a
//                            PolicyAction that says why). Returns once
//                            started.
//   promote(tier, caller)    swapon of a drained tier at its priority (+discard).
//   evacuate(tier, caller)   the policy engine's way to free a VRAM tier's
//                            GPU memory.
//
// A tier whose record names a spill store and whose plug-in hands out a
// control channel (TierControl: a vram tier with `spill:`) is moved there
// instead: evacuate and demote ask its exporter to move every block to the
// spill store while the swap area stays up (no room rule: nothing comes
// through RAM), its progress polled every poll_interval -> progress events;
// active -> evacuating -> evacuated (recorded in the journal), or back to
// active with a PolicyAction that says why. promote of an evacuated tier
// moves the blocks back: evacuated -> evacuating -> active. A tier without a
// spill store keeps the swapoff path.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/tier_control.hpp"
#include "daemon/caller.hpp"
#include "daemon/engine.hpp"
#include "daemon/event_sink.hpp"

namespace tierswap {

struct RunnerOptions {
  // How often a running demote reads /proc/swaps for progress.
  std::chrono::milliseconds poll_interval{200};
  std::function<void(const std::string&)> warn;  // log sink
  // Called with true once a reload has the busy state, false when it ends
  // (the daemon's "reloading" state); never for a refused reload.
  std::function<void(bool)> reloading;
  // The control channel of a tier (TierControls::get); unset or null: the
  // tier has none, and only the swapoff path applies.
  std::function<std::shared_ptr<TierControl>(const OwnedTier&)> control_for;
};

class OperationRunner {
 public:
  OperationRunner(Engine& engine, EventSink& events, RunnerOptions opts = {});
  // Waits for a running demote (call abort() first to cut it short).
  ~OperationRunner();

  Result<std::size_t> reload(const Caller& caller);
  // The same reload on the runner's worker thread: claims the busy state here
  // (EBUSY at once when something runs), returns, and calls `done` on the
  // worker once the apply has ended and the busy state is released.
  Result<void> start_reload(const Caller& caller, std::function<void(Result<std::size_t>)> done);
  Result<void> demote(const std::string& tier, const Caller& caller);
  Result<void> promote(const std::string& tier, const Caller& caller);
  Result<void> evacuate(const std::string& tier, const Caller& caller);

  // What runs now.
  struct Running {
    std::string what;  // "reload", "demote", "evacuate", "promote"
    std::string tier;  // empty for reload
    Caller caller;
    // Moved through the tier's exporter to or from its spill store (the
    // swap area stays up), not by swapoff.
    bool spill = false;
  };
  [[nodiscard]] std::optional<Running> running() const;

  // Aborts a running demote (kills RealKernel's swapoff helper: the kernel
  // re-inserts the area) or a move to or from a spill store (the exporter
  // cancels it: chunks moved stay where they are). Returns whether one was
  // running.
  bool abort(const std::string& why);
  // Blocks until nothing runs.
  void wait_idle();

 private:
  // Claims the busy state, or EBUSY naming what holds it.
  Result<void> claim(Running r);
  void release();
  // Engine::reload under a busy state already claimed; releases it.
  Result<std::size_t> run_reload(const Caller& caller);
  Result<void> drain(const std::string& what, const std::string& tier, const Caller& caller);
  void run_drain(Running op, OwnedTier rec, std::uint64_t total);
  Result<void> known_tier(const std::string& tier);
  // The tier's record and channel when it moves through a spill store.
  struct SpillRoute {
    OwnedTier rec;
    std::shared_ptr<TierControl> control;
  };
  std::optional<SpillRoute> spill_route(const std::string& tier);
  Result<void> spill_move(const std::string& what, bool out, SpillRoute route, const Caller& caller);
  void run_spill_move(Running op, bool out, SpillRoute route, std::uint64_t total);

  Engine& engine_;
  EventSink& events_;
  RunnerOptions opts_;

  mutable std::mutex mu_;  // everything below; never held while waiting on the engine's swapoff
  std::condition_variable cv_;
  std::optional<Running> op_;
  std::string abort_why_;
  bool abort_requested_ = false;
  std::thread worker_;
};

}  // namespace tierswap
