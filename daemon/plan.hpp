// Plan: what applying a config would do, as plain data: an ordered list of
// Steps (common/step.hpp), each owned by a tier-kind plug-in that knows how
// to run, undo and describe it (daemon/plan_ops.hpp dispatches).
#pragma once

#include <string>
#include <vector>

#include "common/owned.hpp"
#include "common/step.hpp"

namespace tierswap {

struct Plan {
  std::string source;              // config the plan came from
  std::vector<Step> steps;         // in apply order
  std::vector<std::string> notes;  // what a person should know (round-robin, algorithm chosen)
  [[nodiscard]] bool empty() const { return steps.empty(); }
};

}  // namespace tierswap
