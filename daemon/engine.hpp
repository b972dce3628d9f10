// Engine: the daemon's core, shared by the signal loop (daemon.cpp) and the
// D-Bus Manager: load the config, observe, plan, apply, journal, teardown.
//
// Thread-safety: every public method may be called from any thread. The
// changing ones take the engine's lock (an apply holds it for its whole
// duration: a second caller waits); the const readers (journal(),
// configured_tiers(), config_source(), ...) never wait for it: they read
// a copy published at the end of each change.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/kernel.hpp"
#include "common/result.hpp"
#include "config/policy_settings.hpp"
#include "config/spec.hpp"
#include "daemon/journal.hpp"
#include "daemon/plan.hpp"
#include "daemon/planner.hpp"
#include "policy/swap_room.hpp"

namespace tierswap {

struct EngineOptions {
  std::string root = "/";
  std::optional<std::string> config;  // --config; unset: /etc/tierswap.yaml, else the embedded default
  bool keep_on_exit = false;
  // Every apply's ApplyOptions::before_step (unset: none). The tests' fault
  // injection sets it; the daemon never does.
  std::function<Result<void>(std::size_t number, const Step& step)> before_step;
  // Builds the kernel on the engine's HostFs; unset, or returning null: the
  // real kernel. Tests set it to the recording kernel (tests/support/).
  std::function<std::unique_ptr<swap::Kernel>(const HostFs&)> make_kernel;
  std::function<void(const std::string&)> info, warn;  // log sinks
};

// A loaded config, or every diagnostic as printable lines in the error.
struct LoadedConfig {
  config::Spec spec;
  std::vector<config::Diagnostic> warnings;
};

// The swap areas as the room rule sees them: /proc/swaps, each zram
// area's mm_stat (mem_limit, mem_used_total, ratio), MemAvailable; and RAM
// as room (policy::RamRoom): MemTotal, vm.min_free_kbytes and the memory
// cgroups that hold swap (read_ram_room).
struct RoomFacts {
  std::vector<policy::RoomArea> areas;
  std::uint64_t mem_available = 0;
  policy::RamRoom ram;
};
Result<RoomFacts> read_room_facts(const HostFs& fs);

// RAM as room: the reserve from MemTotal and vm.min_free_kbytes, and the
// memory cgroups that hold swapped-out pages with their limits, read from
// the cgroup v2 hierarchy at /sys/fs/cgroup when it has the memory
// controller, else from the v1 memory hierarchy (total_swap,
// hierarchical_memory_limit, memory.usage_in_bytes). Only cgroups that hold
// swap are visited (swap counts are hierarchical). No memory controller at
// all (/proc/cgroups): no cgroup caps anything. Anything that cannot be
// read (no swap accounting, files missing, more than 20000 cgroups): RAM is
// not counted, and the reason is kept for the verdict's message.
policy::RamRoom read_ram_room(const HostFs& fs, std::uint64_t mem_total);

// The RAM part of a room verdict for messages: "; RAM can take 18.2 GiB
// (MemAvailable less a reserve of 1.5 GiB)" (and what its cgroups' limits
// keep out of RAM), or "; RAM is not counted: <why>"; empty when the
// verdict has neither.
std::string ram_room_text(const policy::RoomVerdict& v);

// The room verdict for swapping off `swap_path` now, against every other
// active area. not_found when it is not in /proc/swaps.
Result<policy::RoomVerdict> swapoff_room_now(const HostFs& fs, const std::string& swap_path);

class Engine {
 public:
  // kernel null: the real kernel.
  explicit Engine(EngineOptions opts, std::unique_ptr<swap::Kernel> kernel = nullptr);

  // Loads the journal, reconciles it with the machine (adopting what is
  // still there), then applies the config. On failure everything this call
  // did is undone and the error says why. A journal that does not load
  // (corrupt, or naming paths tierswapd never writes) is set aside as
  // state.json.invalid-<time>, and what tierswap owns is rebuilt from the
  // kernel instead (rebuild_from_kernel), each step logged.
  Result<void> start();
  // Re-reads the config and applies the difference. Returns the number of
  // steps applied (0: nothing to do). On failure the previous state stays.
  // A plan whose swapoffs (a dropped tier, a priority change) would not fit
  // by the room rule (policy/swap_room.hpp) is refused: not_enough_memory with the
  // numbers, nothing applied.
  Result<std::size_t> reload();
  // Undoes everything in the journal (unless keep_on_exit). Each swapoff,
  // lowest priority first, must fit by the room rule against the areas that
  // remain at that point; a tier whose pages do not fit stays set up and in
  // the journal (the next start adopts it), everything else is undone, and
  // the result is not_enough_memory naming each kept tier with the numbers.
  Result<void> stop();
  // The plan reload() would apply now (never waits for a running apply:
  // made against the journal the last finished change left).
  Result<Plan> plan();

  // Demote/promote (the D-Bus Manager): the swapoff itself runs outside the
  // lock, between begin_demote() and end_demote(); meanwhile reload() and a
  // second begin_demote()/promote() answer busy.
  //   begin_demote: the tier must be in the journal and active; returns its
  //     record (swap_path, priority).
  //   end_demote: drained true records the tier as drained (saved at once),
  //     so that reload leaves it inactive and teardown does not swapoff it.
  //   promote: swapon of a drained tier at its journalled priority (+discard).
  Result<OwnedTier> begin_demote(const std::string& tier);
  Result<void> end_demote(const std::string& tier, bool drained);
  Result<OwnedTier> promote(const std::string& tier);
  [[nodiscard]] std::optional<std::string> busy_tier() const;
  // A vram tier's evacuation to its spill store ended: records whether its
  // blocks are now in the spill store (saved at once). not_found when the
  // tier left the journal meanwhile.
  Result<void> mark_evacuated(const std::string& tier, bool evacuated);

  // The tiers of the config last applied (for status: a configured tier
  // that is not in the journal is "unavailable").
  struct ConfiguredTier {
    std::string name, kind, path;  // path: file path or partition device as written; else empty
    int priority = 0;
    std::uint64_t size_bytes = 0;  // as the config resolves it (0: a whole partition, or unresolved)
    std::string gpu;               // kind vram: the `gpu:` key as written (index, UUID or name; empty: first)
    std::string reserve;           // kind vram: `reserve:` as written; empty: policy.reserve_mib
    std::optional<std::uint64_t> reserve_bytes;  // resolved at load (unset: "10% of vram")
  };
  [[nodiscard]] std::vector<ConfiguredTier> configured_tiers() const;
  // The `cgroups:` names of the config last applied, as written.
  [[nodiscard]] std::vector<std::string> configured_cgroups() const;
  // The `policy:` settings of the config last applied (over its profile's defaults).
  [[nodiscard]] config::PolicySettings policy_settings() const;

  [[nodiscard]] std::string config_source() const;
  // `metrics:` of the config last applied (read by the daemon at start).
  [[nodiscard]] config::MetricsSettings metrics_settings() const;
  [[nodiscard]] const HostFs& fs() const { return fs_; }
  [[nodiscard]] Journal journal() const;
  swap::Kernel& kernel() { return *kernel_; }
  std::mutex& mutex() { return mu_; }

 private:
  Result<LoadedConfig> load();
  Result<Plan> plan_locked(const LoadedConfig& cfg);
  Result<Plan> plan_against(const LoadedConfig& cfg, const Journal& journal) const;
  Result<std::size_t> apply_locked();
  Result<void> check_plan_room(const Plan& plan);
  // The journalled tier that a demote or promote (`op`) acts on: busy while
  // one runs, invalid_config when the plan left the tier out.
  Result<OwnedTier*> journalled_tier_locked(const std::string& tier, const char* op);
  void adopt_from_kernel(const Error& why);

  EngineOptions opts_;
  HostFs fs_;
  std::unique_ptr<swap::Kernel> kernel_;
  // What the engine knows: changed under mu_ (state_), and the copy the
  // const accessors return (view_), taken at the end of every change
  // (publish_locked) under its own lock: an apply holds mu_ for its whole
  // length (swapoffs included), and status readers (GetStatus, the tick,
  // metrics) must not wait for it. They see the state as the last finished
  // change left it.
  struct State {
    Journal journal;
    std::string source;
    std::vector<ConfiguredTier> configured;
    config::PolicySettings policy;
    config::MetricsSettings metrics;
    std::vector<std::string> cgroups;
    std::optional<std::string> busy;  // tier whose demote is running
  };
  mutable std::mutex mu_;
  State state_;
  void publish_locked();
  // Publishes when the enclosing mutator returns, on every path.
  struct Publish {
    Engine& e;
    ~Publish() { e.publish_locked(); }
  };
  mutable std::mutex view_mu_;
  State view_;
};

}  // namespace tierswap
