// The status document: Status <-> JSON. The same text is the reply of
// org.tierswap.Manager1.GetStatus() and the output of
// `tierswapctl status --json`; its fields are documented in tierswapctl(8)
// (STATUS JSON). Keys keep a fixed order, so the text is stable for golden
// tests and diffs. "format" is bumped only for incompatible changes; new
// keys may be added at any time (readers ignore keys they do not know).
//
// {
//   "format": 1, "version": "0.1.0", "state": "running",
//   "config_source": "/etc/tierswap.yaml", "swappiness": 150,
//   "memory": {"total_bytes": N, "available_bytes": N},
//   "pressure": {"memory": {"some": {"avg10": %, "avg60": %, "avg300": %, "total_us": N},
//                           "full": {...}},
//                "io": {...}},
//   "swap": {"in_pages_per_s": x, "out_pages_per_s": x},
//   "tiers": [{"name", "kind", "device", "priority", "state", "size_bytes", "used_bytes",
//              "stored_bytes", "compression_ratio", "latency_p99_us"}, ...],  // priority order
//   "gpus": [{"name", "total_bytes", "free_bytes", "used_by_tier_bytes"}, ...]
// }
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "dbus/status.hpp"

namespace tierswap::dbus {

inline constexpr int kStatusFormat = 1;

// pretty: two-space indented (for people); else one line (for the bus).
std::string status_to_json(const Status& s, bool pretty = false);

// Reads a document written by status_to_json (any spacing; nlohmann-json).
// Missing keys keep their defaults; text that is not JSON, a wrong type or an
// unknown tier state is a protocol error naming the key.
Result<Status> status_from_json(std::string_view text);

}  // namespace tierswap::dbus
