// The installed daemon's signal readers, as SignalProviders:
//
//   vram        NVML (backends/gpu, loaded at run time) for each `kind: vram`
//               tier of the config applied: free and total memory of the
//               tier's GPU (its `gpu:` key) and what processes other than
//               tierswap's exporters hold on it. No vram tier: NVML is never
//               loaded. NVML absent: no samples (said once in the log).
//   on_battery  UPower's OnBattery on the system bus; where UPower is not on
//               the bus (tried again at most once a minute) or there is no
//               bus, /sys/class/power_supply under the daemon's root.
//
// Both run on the daemon's loop, once per snapshot: an NVML poll of one GPU
// costs about 20 µs with persistence mode on (the first load can take
// seconds without it); UPower's value is an atomic read, its connect one
// bounded call (2 s), made on a thread of its own (a bus that never
// answers must not stall the loop).
#pragma once

#include <string>

#include "daemon/engine.hpp"
#include "daemon/signal_providers.hpp"

namespace tierswap {

struct SignalReaderOptions {
  bool use_bus = true;      // false (--no-dbus): power from sysfs only
  std::string bus_address;  // empty: the system bus
};

// `engine` must outlive the providers.
SignalProviders signal_readers(const Engine& engine, SignalReaderOptions options);

}  // namespace tierswap
