// PressureAlert: when to tell desktop tools that memory or I/O is stalling.
// An edge detector with hysteresis over PSI "some avg10": it fires once when
// the value rises to `raise_pct` or above and re-arms only after it falls
// below `clear_pct`, so a value hovering at the threshold does not flood the
// bus. Pure: values in, decision out (the policy engine's PSI triggers will
// feed the same detector later).
#pragma once

namespace tierswap::policy {

struct PressureThresholds {
  double raise_pct = 10.0;  // some avg10 at or above this raises the alert
  double clear_pct = 5.0;   // below this it re-arms
};

struct PressureAlertState {
  bool raised = false;
};

// Returns true when an alert should be sent for this sample; updates state.
bool pressure_alert(PressureAlertState& state, double some_avg10, const PressureThresholds& t = {});

}  // namespace tierswap::policy
