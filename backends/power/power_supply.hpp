// AC or battery from /sys/class/power_supply (through HostFs, so tests and
// `tierswapctl doctor --root` read a fake tree): the fallback where UPower
// (dbus/upower.hpp) is not on the system bus.
//
// Rules (those of UPower's OnBattery, for the supplies the kernel shows):
// - line power: a supply of type "Mains" or "USB" (a USB-C charger) whose
//   `online` is 1;
// - a system battery: type "Battery" whose `scope` is not "Device" (a
//   mouse's or headset's battery is scope Device and says nothing about
//   the machine); discharging when its `status` is "Discharging";
// - on battery: a system battery discharges and no line power is online;
// - type "UPS" is ignored: a UPS that discharges means a power cut on a
//   machine that has no battery of its own to save, and UPSes are seldom
//   in sysfs (NUT and apcupsd speak for them);
// - unknown: neither line power nor a system battery exists (most desktops,
//   servers and VMs): the policy treats it as AC.
//
// Cost: a directory listing and two or three small sysfs reads per supply
// (tens of µs); fine on every tick. Stateless; any thread.
#pragma once

#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"

namespace tierswap::power {

enum class PowerSource { ac, battery, unknown };

// "AC", "battery", "unknown".
const char* to_string(PowerSource s);

// One entry of /sys/class/power_supply, as read.
struct PowerSupply {
  std::string name;    // "AC", "BAT0", "ucsi-source-psy-USBC000:001"
  std::string type;    // "Mains", "Battery", "USB", "UPS", "Wireless", ...
  std::string scope;   // "System", "Device" or "" (most drivers leave it out)
  int online = -1;     // `online` (0/1); -1 when the file is absent
  std::string status;  // `status` ("Charging", "Discharging", "Full", "Not charging", ...)
};

struct PowerReading {
  PowerSource source = PowerSource::unknown;
  bool line_power_present = false;  // a Mains/USB supply exists
  bool line_power_online = false;
  int batteries = 0;  // system batteries
  int batteries_discharging = 0;
  std::vector<PowerSupply> supplies;  // everything listed, ignored ones included

  [[nodiscard]] bool on_battery() const { return source == PowerSource::battery; }
};

// The rules above over supplies already read (pure).
PowerReading classify(std::vector<PowerSupply> supplies);

// Lists and reads /sys/class/power_supply. A missing directory is no
// error (a machine without supplies: unknown); an entry whose `type`
// cannot be read is skipped.
PowerReading read_power_supply(const HostFs& fs);

// "AC (line power online)", "battery (BAT0 discharging, no line power)",
// "unknown (no battery or line power in /sys/class/power_supply)".
std::string describe(const PowerReading& r);

}  // namespace tierswap::power
