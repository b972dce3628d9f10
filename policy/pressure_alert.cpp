#include "policy/pressure_alert.hpp"

namespace tierswap::policy {

bool pressure_alert(PressureAlertState& state, double some_avg10, const PressureThresholds& t) {
  if (state.raised) {
    if (some_avg10 < t.clear_pct) state.raised = false;
    return false;
  }
  if (some_avg10 >= t.raise_pct) {
    state.raised = true;
    return true;
  }
  return false;
}

}  // namespace tierswap::policy
