// Step: one kernel-visible action of a plan, as plain data.
//
// A step belongs to the tier-kind plug-in named by `kind` (common/tier_kind.hpp):
// that plug-in executes it, undoes it, records it in the journal and
// describes it; `op` is the plug-in's own name for the action ("zram_add",
// "write", "swapon") and is what plans print. The other fields are the
// payload; which of them an op uses is the plug-in's business (StepFields
// says which ones the JSON form of a plan carries). Steps are data, not
// closures, so that a plan can be printed, compared in golden tests, written
// as JSON and journalled.
//
// Names that exist only at apply time (the zram device a hot_add creates)
// are written as placeholders in `path` ("{zram:TIER}"); the step that
// creates the thing binds the placeholder when it runs (ExecContext::bind).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tierswap {

struct Step {
  std::string kind;  // the plug-in that owns the step: "zram", "disk", "zswap", "sysctl"
  std::string op;    // the plug-in's op id: "zram_add", "write", "make_file", "swapon", ...
  std::string tier;  // tier name; empty for zswap/sysctl values
  std::string path;
  std::string value;
  std::optional<std::string> previous;  // write: undo writes it back; nullopt: nothing to undo
  int priority = -1;
  bool discard = false;
  std::uint64_t size = 0;
  std::uint64_t previous_size = 0;
  // Added to the kernel's answer when the step fails ("this kernel offers: lzo").
  std::string hint;
};

// The payload keys the JSON form of a plan shows for a step (besides n, op,
// tier, path, size and previous_size when set, reversible and undo).
struct StepFields {
  bool value = false;     // "value"
  bool previous = false;  // "previous" (null when unset)
  bool priority = false;  // "priority" and "discard"
};

}  // namespace tierswap
