// What a Step means: its undo, its effect on the journal, and how it reads.
#pragma once

#include <optional>
#include <string>

#include "daemon/plan.hpp"
#include "daemon/journal.hpp"

namespace tierswap {

const char* to_string(StepOp op);

// The step that undoes `s` once it ran (with {zram:T} already bound), or
// nullopt when nothing needs undoing (a write to a device that the undo of
// its zram_add removes, a swap header) or nothing can (zram_remove,
// remove_file: planned last for that reason).
std::optional<Step> undo_of(const Step& s);
// Whether the step can be undone at all (false: zram_remove, remove_file).
bool reversible(const Step& s);

// Records in `j` what the completed step `s` (bound) changed.
void record(Journal& j, const Step& s);

// "{zram:fast}" in `text` -> the bound device; unchanged when none.
std::string bind_device(const std::string& text, const std::string& tier, const std::string& device);

// One line: `write /proc/sys/vm/swappiness = "150" (was "60")`.
std::string describe(const Step& s);
// `undo: write "60"`, `undo: none (removed with the device)`, `no undo`.
std::string describe_undo(const Step& s);

std::string plan_to_text(const Plan& p);
std::string plan_to_json(const Plan& p);

}  // namespace tierswap
