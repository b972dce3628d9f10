// Kernel value writes as plan steps (op "write"), shared by the plug-ins
// whose steps set sysfs/procfs values: a step writes `value` to `path`;
// with `previous` set, its undo writes that back and the journal keeps the
// value's original for teardown; without it (an attribute of a device this
// plan creates) nothing needs undoing.
#pragma once

#include <optional>
#include <string>

#include "backends/hostfs/host_fs.hpp"
#include "common/tier_kind.hpp"

namespace tierswap::value_step {

inline constexpr const char* op = "write";

Step write(std::string kind, std::string path, std::string value, std::optional<std::string> previous,
           std::string hint = {});
Result<void> execute(const HostFs& fs, const Step& s);
std::optional<Step> undo_of(const Step& s);
// Journals the value: the first change keeps the original; a write back to
// the original forgets it.
void record_value(Ownership& own, const Step& s);
std::string describe(const Step& s);
std::string describe_undo(const Step& s);
// TierKind::recover of a write: the step itself when it has an original to
// restore (a write the crash came before restores what is there anyway).
std::optional<Step> recover(const Step& s);
inline StepFields fields() {
  return {.value = true, .previous = true};
}

// A plug-in whose steps are all value writes (zswap, sysctl): everything
// but name(), probe(), observe(), planning and owns_value().
class ValueKind : public TierKind {
 public:
  Result<void> execute(Step& s, ExecContext& ctx) const override;
  std::optional<Step> undo_of(const Step& s) const override { return value_step::undo_of(s); }
  void record(Ownership& own, const Step& s) const override { record_value(own, s); }
  std::string describe(const Step& s) const override { return value_step::describe(s); }
  std::string describe_undo(const Step& s) const override { return value_step::describe_undo(s); }
  StepFields fields(const Step&) const override { return value_step::fields(); }
  // A write interrupted by a crash is recorded as done: its original is in
  // the step, and restoring it is harmless if the write never happened.
  std::optional<Step> recover(const Step& s, const HostFs&, const std::vector<swap::SwapArea>&,
                              std::vector<std::string>&) const override {
    return value_step::recover(s);
  }

 protected:
  // Plans `want` at `path` (current value `current`): nothing when equal.
  void value(PlanContext& ctx, const std::string& path, const std::string& want, const std::string& current,
             std::string hint = {}) const;
};

}  // namespace tierswap::value_step
