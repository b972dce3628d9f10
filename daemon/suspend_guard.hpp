// SuspendGuard: keeps the pages of tiers that do not survive suspend (a
// VRAM tier whose NVIDIA driver does not preserve video memory: its store
// says so through TierKind::suspend_loss) from being lost when the machine
// sleeps, through systemd-logind (dbus/logind.hpp):
//
//   a tier that would lose pages is up   -> hold a "delay" inhibitor lock
//   PrepareForSleep(true)                -> drain each such tier through the
//                                           operation runner's evacuate
//                                           (caller "logind PrepareForSleep"),
//                                           one after the other; then release
//                                           the delay lock (also when a drain
//                                           is refused: said in the log)
//   PrepareForSleep(false)               -> promote what was drained, take the
//                                           delay lock again
//   such a tier holds pages that cannot  -> hold a "block" lock while it does
//   be drained (the room rule refuses)      (status and doctor show it)
//   the drain would take longer than     -> say so in status and the log, with
//   logind's InhibitDelayMaxUSec            the InhibitDelayMaxSec to set
//                                           (sleep_delay_warning())
//
// A machine without such a tier never connects to logind. Where logind is
// absent the status says the tiers are not guarded.
//
// Threads: attach(), update() and every handler run on the daemon's
// sd-event loop. logind's client runs on its own thread (a bus that never
// answers must not stall the loop); what it reports is queued onto the
// loop through an eventfd.
#pragma once

#include <systemd/sd-event.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/engine.hpp"
#include "daemon/manager.hpp"
#include "policy/swap_room.hpp"

namespace tierswap {

// A tier as the guard sees it.
struct SleepTier {
  std::string name, swap_path;
  std::string loss;    // why its pages would not survive suspend
  bool up = false;     // swapped on, not drained
  bool spill = false;  // drains by evacuation to its spill store (fast), not swapoff
  std::uint64_t used = 0;
  std::optional<policy::RoomVerdict> room;  // the room rule now, when it holds pages
};

// What the guard must hold for those tiers (pure).
struct SleepNeeds {
  std::vector<std::string> drain;  // tiers to drain before sleep (up, in order)
  std::string delay;               // non-empty: hold a delay lock; what for
  std::string block;               // non-empty: hold a block lock; why, with the numbers
};
SleepNeeds sleep_needs(const std::vector<SleepTier>& tiers);

// Whether draining the up tiers takes longer than logind waits
// (policy/sleep_drain.hpp): the warning with the fix, or nullopt (also when
// logind's InhibitDelayMaxUSec is not known). `rates`: bytes per second
// each tier's last drain was observed at.
std::optional<std::string> sleep_delay_warning(const std::vector<SleepTier>& tiers,
                                               std::optional<std::chrono::microseconds> delay_max,
                                               const std::map<std::string, std::uint64_t>& rates = {});

// The journal's tiers whose kind says they lose pages across suspend,
// with their use (/proc/swaps) and the room rule for those holding pages.
std::vector<SleepTier> sleep_tiers(const Engine& engine);

struct SuspendGuardOptions {
  std::string bus_address;  // empty: the system bus
  std::function<void(const std::string&)> info, warn;
  // How often a running drain or a pending promote is looked at.
  std::chrono::milliseconds step{100};
};

class SuspendGuard {
 public:
  // `engine` and `manager` must outlive the guard.
  static Result<std::unique_ptr<SuspendGuard>> attach(sd_event* loop, Engine& engine, Manager& manager,
                                                      SuspendGuardOptions options);
  ~SuspendGuard();
  SuspendGuard(const SuspendGuard&) = delete;
  SuspendGuard& operator=(const SuspendGuard&) = delete;

  // The loop's tick: takes or releases the locks to match the tiers now.
  void update();

  struct Impl;

 private:
  explicit SuspendGuard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierswap
