// What a Step means: its undo, its effect on the journal, and how it reads.
// Each function hands the step to the plug-in that owns it (Step::kind,
// daemon/kind_registry.hpp); a step of a kind no plug-in registers is
// described as such and fails when run.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "daemon/journal.hpp"
#include "daemon/plan.hpp"

namespace tierswap {

// The step that undoes `s` once it ran (placeholders already bound), or
// nullopt when nothing needs undoing (a write to a device that the undo of
// its zram_add removes, a swap header) or nothing can (zram_remove,
// remove_file: planned last for that reason).
std::optional<Step> undo_of(const Step& s);
// Whether the step can be undone at all (false: zram_remove, remove_file).
bool reversible(const Step& s);

// Records in `j` what the completed step `s` (bound) changed.
void record(Journal& j, const Step& s);

// One line: `write /proc/sys/vm/swappiness = "150" (was "60")`.
std::string describe(const Step& s);
// `undo: write "60"`, `undo: none (removed with the device)`, `no undo (planned last)`.
std::string describe_undo(const Step& s);

std::string plan_to_text(const Plan& p);
// The plan document of `tierswapctl plan --json` and of the D-Bus Plan()
// call: {"source", "steps": [{"n", "op", "tier", "path", ...}], "notes"}.
nlohmann::ordered_json plan_document(const Plan& p);
// plan_document() as two-space indented text with a final newline.
std::string plan_to_json(const Plan& p);

}  // namespace tierswap
