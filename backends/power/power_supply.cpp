#include "backends/power/power_supply.hpp"

#include "backends/hostfs/paths.hpp"

namespace tierswap::power {

const char* to_string(PowerSource s) {
  switch (s) {
    case PowerSource::ac:
      return "AC";
    case PowerSource::battery:
      return "battery";
    case PowerSource::unknown:
      break;
  }
  return "unknown";
}

namespace {

bool is_line_power(const PowerSupply& s) {
  return (s.type == "Mains" || s.type == "USB") && s.scope != "Device";
}

bool is_system_battery(const PowerSupply& s) {
  return s.type == "Battery" && s.scope != "Device";
}

}  // namespace

PowerReading classify(std::vector<PowerSupply> supplies) {
  PowerReading r;
  for (const auto& s : supplies) {
    if (is_line_power(s)) {
      r.line_power_present = true;
      if (s.online == 1) r.line_power_online = true;
    } else if (is_system_battery(s)) {
      ++r.batteries;
      if (s.status == "Discharging") ++r.batteries_discharging;
    }
  }
  if (r.line_power_online)
    r.source = PowerSource::ac;
  else if (r.batteries_discharging > 0)
    r.source = PowerSource::battery;
  else if (r.line_power_present || r.batteries > 0)
    // Line power offline and no battery discharging (charging from another
    // source, full, "Not charging"): the machine is not running off its battery.
    r.source = PowerSource::ac;
  r.supplies = std::move(supplies);
  return r;
}

PowerReading read_power_supply(const HostFs& fs) {
  std::vector<PowerSupply> supplies;
  if (auto names = fs.list(paths::sys_power_supply)) {
    for (const auto& name : *names) {
      const std::string dir = std::string(paths::sys_power_supply) + "/" + name;
      auto type = fs.read_value(dir + "/type");
      if (!type) continue;
      PowerSupply s;
      s.name = name;
      s.type = std::move(*type);
      if (auto v = fs.read_value(dir + "/scope")) s.scope = std::move(*v);
      if (auto v = fs.read_int(dir + "/online")) s.online = *v != 0 ? 1 : 0;
      if (auto v = fs.read_value(dir + "/status")) s.status = std::move(*v);
      supplies.push_back(std::move(s));
    }
  }
  return classify(std::move(supplies));
}

std::string describe(const PowerReading& r) {
  std::string batteries;
  for (const auto& s : r.supplies) {
    if (s.type != "Battery" || s.scope == "Device") continue;
    if (!batteries.empty()) batteries += ", ";
    batteries += s.name + " " + (s.status.empty() ? "status unknown" : s.status);
  }
  switch (r.source) {
    case PowerSource::ac:
      if (r.line_power_online)
        return "AC (line power online" + (batteries.empty() ? std::string() : "; " + batteries) + ")";
      return "AC (line power offline but no battery discharging: " + batteries + ")";
    case PowerSource::battery:
      return "battery (" + batteries +
             (r.line_power_present ? "; line power offline)" : "; no line power supply)");
    case PowerSource::unknown:
      break;
  }
  return "unknown (no battery or line power in " + std::string(paths::sys_power_supply) + ")";
}

}  // namespace tierswap::power
