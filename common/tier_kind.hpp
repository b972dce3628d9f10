// TierKind: the interface every tier-kind plug-in implements (backends/<kind>/
// <kind>_kind.*), and the contexts the daemon hands it.
//
// A plug-in owns everything about its kind:
//   probe()     what this kernel offers, each answer naming the file that says so;
//   observe()   its part of the machine's state, read once per plan;
//   plan_*()    the steps that make the machine match its part of the spec,
//               with errors/warnings naming the config key;
//   teardown()  the steps that undo a tier the journal says it owns;
//   execute(), undo_of(), reversible(), record(), describe(), describe_undo(),
//   fields()    its steps (Step::kind == name());
//   stats()     its status figures for a tier it owns;
//   suspend_loss()  whether a tier it owns loses its pages across suspend.
// The daemon (daemon/kind_registry.*) finds a plug-in by name, by configured
// tier kind or by the kernel value a journal entry names; it orders, journals
// and rolls back, but never switches on a kind.
//
// HostFs and swap::Kernel (backends/) are named by forward declaration only:
// common/ includes no other project folder, and plug-ins get the definitions
// from backends/hostfs and backends/swap, which they may include.
//
// Plug-ins are stateless singletons: every method is const and may be called
// from any thread the caller serialises on its own data.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/owned.hpp"
#include "common/result.hpp"
#include "common/step.hpp"
#include "common/tier_control.hpp"
#include "common/tier_spec.hpp"

namespace tierswap {

class HostFs;
namespace swap {
class Kernel;
struct SwapArea;
}  // namespace swap

// One thing a kernel offers or lacks, and the file that says so.
struct Capability {
  std::string name;  // "zram", "recompression", "vm.swappiness"
  bool offered = false;
  std::string evidence;  // the sysfs/procfs file whose presence or content decided it
};

// A plug-in's observation of the machine (its own subclass).
struct KindState {
  virtual ~KindState() = default;
};

// A planning finding. For plan_tier() `key` is the tier's key ("algorithm",
// "" for the tier itself); for plan_system() it is the full key path
// ("zswap.compressor", "sysctl.vm.swappiness", "zswap").
struct Finding {
  bool error = true;  // false: a warning
  std::string key;
  std::string message;
  std::string hint;
};

// What planning reads (the machine, the journal's tiers) and writes (steps,
// notes, findings). One per plan, shared by every plug-in in turn.
struct PlanContext {
  const HostFs& fs;
  const std::vector<swap::SwapArea>& swaps;  // /proc/swaps
  const std::vector<OwnedTier>& owned;       // the journal's tiers
  std::vector<Step>& steps;
  std::vector<std::string>& notes;
  std::vector<Finding>& findings;
  std::set<std::string>& kept;       // owned swap paths the spec keeps (not torn down)
  std::set<std::string>& wanted;     // kernel value paths the spec sets (not restored)
  const KindState* state = nullptr;  // the called plug-in's observe() result

  void error(std::string key, std::string message, std::string hint = {}) {
    findings.push_back({true, std::move(key), std::move(message), std::move(hint)});
  }
  void warning(std::string key, std::string message, std::string hint = {}) {
    findings.push_back({false, std::move(key), std::move(message), std::move(hint)});
  }
  void note(std::string text) { notes.push_back(std::move(text)); }
  void add(Step s) { steps.push_back(std::move(s)); }
  [[nodiscard]] bool is_kept(const std::string& swap_path) const { return kept.contains(swap_path); }
  void keep(const std::string& swap_path) { kept.insert(swap_path); }
  void want_value(const std::string& path) { wanted.insert(path); }
  template <class S>
  [[nodiscard]] const S& state_as() const {
    return static_cast<const S&>(*state);
  }
};

// What executing a step may use. bind() gives a placeholder in later steps'
// paths ("{zram:fast}") its value for the rest of the apply.
struct ExecContext {
  const HostFs& fs;
  swap::Kernel& kernel;
  std::map<std::string, std::string>& bindings;
  void bind(const std::string& placeholder, const std::string& value) { bindings[placeholder] = value; }
};

// Undoing an owned tier: `release` steps are reversible (swapoff) and run
// for every tier first; `destroy` steps cannot be undone (zram reset, file
// removal) and run after all releases.
struct TeardownSteps {
  std::vector<Step> release;
  std::vector<Step> destroy;
};

// What a plug-in found when it checked a journalled tier after a restart.
struct Readoption {
  std::vector<std::string> log;  // one line per finding, for the daemon's log
  // The tier is not what the journal says (its device now belongs to
  // something else): forget it and leave the kernel's state alone.
  bool forget = false;
};

// A tier's status figures.
struct TierStats {
  std::uint64_t size_bytes = 0;
  std::uint64_t used_bytes = 0;
  bool active = false;
  // A tier served by a process (vram: its exporter): "running" or "gone";
  // empty for the other kinds.
  std::string process_state;
};

// What the steps of a plan say about the swap area that a later swapon of
// the same tier in that plan turns on (for the room rule, before anything
// ran, so placeholders are still unbound).
struct PlannedArea {
  std::uint64_t size_bytes = 0;  // 0: unknown here (the swapon's own size counts)
  std::uint64_t mem_limit = 0;   // zram: its mem_limit (0: none)
  bool zram = false;             // RAM-backed: its room counts what mem_limit and free RAM hold
};

class TierKind {
 public:
  virtual ~TierKind() = default;

  // The plug-in's name: Step::kind of its steps ("zram", "disk").
  [[nodiscard]] virtual std::string_view name() const = 0;
  // The configured tier kinds it plans and owns ("file", "partition"); empty
  // for a machine-wide kind (zswap, sysctl).
  [[nodiscard]] virtual std::vector<std::string_view> tier_kinds() const { return {}; }

  [[nodiscard]] virtual std::vector<Capability> probe(const HostFs& fs) const = 0;
  [[nodiscard]] virtual std::unique_ptr<KindState> observe(const HostFs&) const { return nullptr; }

  // Plans one configured tier of a kind in tier_kinds(); tiers come highest
  // priority first.
  virtual void plan_tier(const TierSpec&, PlanContext&) const {}
  // Plans the machine-wide sections, after all tiers, in registry order.
  virtual void plan_system(const SystemSpec&, PlanContext&) const {}
  // The steps that undo `tier` (one of tier_kinds()).
  [[nodiscard]] virtual TeardownSteps teardown(const OwnedTier&, const std::vector<swap::SwapArea>&) const {
    return {};
  }
  // After a restart, before anything is planned: checks that a tier the
  // journal says this kind owns is still what the journal says (vram: its
  // exporter is that very process and its device is still attached), with
  // the journal treated as hostile input. May set OwnedTier::failed (the
  // next apply then tears the tier down and sets it up afresh) or clear what
  // must no longer be touched. Reads only; changes nothing in the kernel.
  [[nodiscard]] virtual Readoption readopt(OwnedTier&, const HostFs&) const { return {}; }
  // Whether a journalled kernel value is this kind's to restore: exactly the
  // values its steps write. The journal loader refuses a value no plug-in
  // claims, so a loose answer (a whole directory) would let a damaged
  // journal name any file there.
  [[nodiscard]] virtual bool owns_value(std::string_view) const { return false; }

  // Runs `s` (placeholders already bound). Errors name the path, the value
  // and the kernel's answer. May fill in what only the kernel knew (the
  // device a hot_add created) for record() and undo_of().
  [[nodiscard]] virtual Result<void> execute(Step& s, ExecContext& ctx) const = 0;
  // Right before `s` is saved in the journal as pending (Journal::pending):
  // notes in it what recover() will need after a crash (zram_add: the
  // devices that exist before the hot_add). Reads only.
  virtual void prepare(Step&, const HostFs&) const {}
  // After a crash between the kernel change of `pending` and the journal
  // save that records it: the step as it completed, judged from the kernel
  // (zram_add: the device that the hot_add created), for record(); nullopt:
  // nothing to record (it did not happen, or what it would remove stays
  // journalled and is removed again). The default records nothing, as
  // before journalling intents. Reads only; one line per finding in `log`.
  [[nodiscard]] virtual std::optional<Step> recover(const Step& /*pending*/, const HostFs&,
                                                    const std::vector<swap::SwapArea>&,
                                                    std::vector<std::string>& /*log*/) const {
    return std::nullopt;
  }
  // The step that undoes `s` once it ran, or nullopt when nothing needs or
  // can undo it.
  [[nodiscard]] virtual std::optional<Step> undo_of(const Step& s) const = 0;
  // false for steps that cannot be undone (planned last for that reason).
  [[nodiscard]] virtual bool reversible(const Step&) const { return true; }
  // Records in the journal what the completed step changed.
  virtual void record(Ownership& own, const Step& s) const = 0;
  // One line: `write /proc/sys/vm/swappiness = "150" (was "60")`.
  [[nodiscard]] virtual std::string describe(const Step& s) const = 0;
  // `undo: write "60"`, `undo: none (removed with the device)` (reversible steps only).
  [[nodiscard]] virtual std::string describe_undo(const Step& s) const = 0;
  [[nodiscard]] virtual StepFields fields(const Step& s) const = 0;

  // Adds what the planned step `s` says about its tier's swap area to
  // `area` (disksize, mem_limit, a swap file's size); most steps say nothing.
  virtual void plan_area(const Step&, PlannedArea&) const {}

  // The run-time channel to what serves a tier it owns (vram: its
  // exporter's control socket), or null when it has none. Cheap: connects on
  // first use. The daemon keeps one per tier while the tier's record stays.
  [[nodiscard]] virtual std::shared_ptr<TierControl> control(const OwnedTier&, const HostFs&) const {
    return nullptr;
  }

  // Status figures of a tier it owns; nullopt when it has none to give.
  [[nodiscard]] virtual std::optional<TierStats> stats(const OwnedTier&, const HostFs&) const {
    return std::nullopt;
  }

  // Why the pages on a tier it owns would be lost across suspend (its store
  // does not survive it), or nullopt when they survive: the daemon then
  // drains the tier before sleep (logind's PrepareForSleep). RAM, zram and
  // disks survive; the default says so.
  [[nodiscard]] virtual std::optional<std::string> suspend_loss(const OwnedTier&, const HostFs&) const {
    return std::nullopt;
  }
};

}  // namespace tierswap
