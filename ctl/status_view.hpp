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

// "[#######.............]" with `cells` cells inside the brackets.
std::string usage_bar(double fraction, int cells);

// One character per value, scaled to max(values, floor): " ▁▂▃▄▅▆▇█".
std::string sparkline(const std::deque<double>& values, double floor);

}  // namespace tierswap::ctl
