// Names of TierState, as they appear on D-Bus and in the status JSON.
#include "dbus/status.hpp"

#include "dbus/names.hpp"

namespace tierswap {

const char* to_string(TierState s) {
  switch (s) {
    case TierState::active:
      return "active";
    case TierState::demoting:
      return "demoting";
    case TierState::evacuating:
      return "evacuating";
    case TierState::drained:
      return "drained";
    case TierState::unavailable:
      return "unavailable";
    case TierState::failed:
      return "failed";
    case TierState::evacuated:
      return "evacuated";
  }
  return "unavailable";
}

std::optional<TierState> tier_state_from_string(std::string_view s) {
  for (auto st : {TierState::active, TierState::demoting, TierState::evacuating, TierState::drained,
                  TierState::unavailable, TierState::failed, TierState::evacuated}) {
    if (s == to_string(st)) return st;
  }
  return std::nullopt;
}

}  // namespace tierswap
