// The tier-kind registry: every plug-in tierswapd knows, in planning order
// (tiers first by priority, then each kind's machine-wide part in this
// order: zswap before sysctl). The one place a kind is named; adding a kind
// is one line in kind_registry.cpp.
#pragma once

#include <string_view>
#include <vector>

#include "common/tier_kind.hpp"

namespace tierswap::kinds {

const std::vector<const TierKind*>& all();
// By plug-in name (Step::kind); null when none.
const TierKind* named(std::string_view name);
// By configured tier kind ("file" -> the disk plug-in); null when none
// (a kind the config knows but no plug-in applies).
const TierKind* for_tier(std::string_view tier_kind);
// The plug-in whose kernel value `path` is (a journalled value to restore);
// the fallback value kind when none claims it.
const TierKind& for_value(std::string_view path);
// The plug-in that claims `path` (TierKind::owns_value), or null: a journal
// naming a value no plug-in claims is not one tierswapd wrote.
const TierKind* owner_of_value(std::string_view path);

}  // namespace tierswap::kinds
