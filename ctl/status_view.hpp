// How tierswapctl shows a Status to a person: sizes, the waterfall table
// (within 80 columns), usage bars and sparklines for `watch`.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "common/byte_format.hpp"
#include "dbus/status.hpp"

namespace tierswap::ctl {

// The whole `tierswapctl status` text: header line, tier table, then
// memory/io pressure, swap rates, GPUs and (once it has acted) the policy
// engine's decisions per action and rule. Every line fits `width` columns
// (at least 60; the device column is shortened from the left).
std::string render_status(const Status& s, int width = 80);

// One frame of `tierswapctl watch` on a terminal: the status (at most 80
// columns), a usage bar per tier, memory and io pressure sparklines over
// the last values (oldest first), and the key that quits.
std::string render_watch_frame(const Status& s, const std::deque<double>& mem, const std::deque<double>& io,
                               int width);

// "[#######.............]" with `cells` cells inside the brackets.
std::string usage_bar(double fraction, int cells);

// One character per value, scaled to max(values, floor): " ▁▂▃▄▅▆▇█".
std::string sparkline(const std::deque<double>& values, double floor);

}  // namespace tierswap::ctl
