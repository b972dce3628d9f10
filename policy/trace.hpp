// Policy traces: a sequence of Snapshots as JSON lines, one snapshot per
// line, for `tierswapctl simulate` and the policy tests
// (tests/fixtures/traces/). Text in, snapshots out: no I/O here.
//
//   {"t_ms": 0, "memory": {"some": 0.5, "full": 0}, "io": {"some": 1.2, "full": 0},
//    "mem_available_bytes": 8589934592, "mem_total_bytes": 17179869184,
//    "swap_used_bytes": {"zram": 0, "vram": 0},
//    "vram": [{"tier": "vram", "free_bytes": 8589934592, "total_bytes": 25769803776,
//              "foreign_bytes": 536870912, "p99_us": 180, "size_bytes": 4294967296}],
//    "swap_in_pages_per_s": 0,
//    "on_battery": false, "reload_running": false, "user_demote_running": false}
//
// With `cgroups:` in the config a line also has
//    "cgroup_memory": {"postgresql.service": {"some": 12.5, "full": 7.25}}
// (each named cgroup's memory.pressure avg10; written only when there is one).
//
// Every key but "t_ms" may be left out (0, false, empty); an unknown key is
// an error (a typo must not silently read as 0). "t_ms" never decreases.
// Empty lines and lines whose first non-blank character is '#' are skipped,
// so a trace can say what it records.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "policy/snapshot.hpp"

namespace tierswap::policy {

// The snapshots of `text`, or the first problem as
// "SOURCE:LINE: KEY: what is wrong" (LINE 1-based, KEY as a path such as
// "vram[0].free_bytes"; absent when the line is not JSON).
Result<std::vector<Snapshot>> parse_trace(std::string_view text, std::string_view source);

// One line of a trace (with its "\n"), every key written: what
// `tierswapd --record FILE` appends for each snapshot it decided on.
// parse_trace() reads it back to the same Snapshot (percentages and
// integers exactly; a double keeps 17 significant digits).
std::string format_trace_line(const Snapshot& s);

}  // namespace tierswap::policy
