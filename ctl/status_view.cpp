#include "ctl/status_view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <vector>

namespace tierswap::ctl {

namespace {

std::string shorten_left(const std::string& s, std::size_t w) {
  if (s.size() <= w) return s;
  if (w <= 3) return s.substr(s.size() - w);
  return "..." + s.substr(s.size() - (w - 3));
}

// `text` in lines of at most `width` columns, broken at spaces; lines after
// the first are indented to the value column (10).
std::string wrap_lines(const std::string& text, int width) {
  const std::size_t w = static_cast<std::size_t>(std::max(width, 20));
  std::string out, rest = text;
  bool first = true;
  while (!rest.empty()) {
    const std::string indent = first ? "" : std::string(10, ' ');
    const std::size_t room = w - indent.size();
    std::size_t cut = rest.size();
    if (cut > room) {
      cut = rest.rfind(' ', room);
      if (cut == std::string::npos || cut == 0) cut = room;
    }
    out += indent + rest.substr(0, cut) + '\n';
    rest = rest.substr(cut);
    while (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
    first = false;
  }
  return out;
}

std::string psi_triple(const PressureLine& l) {
  return fmt::format("{:.2f} {:.2f} {:.2f}", l.avg10, l.avg60, l.avg300);
}

}  // namespace

std::string render_status(const Status& s, int width) {
  width = std::max(width, 60);
  std::string out = fmt::format("tierswapd {} {}, config {}", s.version.empty() ? "?" : s.version, s.state,
                                s.config_source.empty() ? "-" : s.config_source);
  if (static_cast<int>(out.size()) > width) out = out.substr(0, width);
  out += '\n';

  // Columns: TIER KIND DEVICE PRIO SIZE USED RATIO STATE, device width flexible.
  struct Row {
    std::string c[8];
  };
  std::vector<Row> rows;
  rows.push_back({{"TIER", "KIND", "DEVICE", "PRIO", "SIZE", "USED", "RATIO", "STATE"}});
  for (const auto& t : s.tiers) {
    std::string ratio =
        t.kind == "zram" && t.used_bytes > 0 ? fmt::format("{:.2f}x", t.compression_ratio) : "-";
    rows.push_back(
        {{t.name, t.kind, t.device.empty() ? "-" : t.device, std::to_string(t.priority),
          format_bytes_short(t.size_bytes), format_bytes_short(t.used_bytes), ratio, to_string(t.state)}});
  }
  std::size_t w[8] = {};
  for (const auto& r : rows)
    for (int i = 0; i < 8; ++i) w[i] = std::max(w[i], r.c[i].size());
  // 7 gaps of two spaces; the device column gives up what does not fit.
  std::size_t others = 14;
  for (int i = 0; i < 8; ++i)
    if (i != 2) others += w[i];
  if (others + w[2] > static_cast<std::size_t>(width)) {
    w[2] = others + 6 < static_cast<std::size_t>(width) ? width - others : 6;
  }
  const bool right[8] = {false, false, false, true, true, true, true, false};
  for (const auto& r : rows) {
    std::string line;
    for (int i = 0; i < 8; ++i) {
      std::string cell = i == 2 ? shorten_left(r.c[i], w[i]) : r.c[i];
      if (i) line += "  ";
      line += right[i] ? fmt::format("{:>{}}", cell, w[i]) : fmt::format("{:<{}}", cell, w[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
  }
  if (s.tiers.empty()) out += "(no tiers)\n";
  for (const auto& t : s.tiers) {
    if (t.kind != "vram" || t.device.empty()) continue;
    // The card: RAM for the host store, else the `gpu:` key (an index or a UUID).
    const std::string card = t.store == "host"                                    ? "RAM"
                             : t.gpu.empty()                                      ? "GPU 0"
                             : std::all_of(t.gpu.begin(), t.gpu.end(), ::isdigit) ? "GPU " + t.gpu
                                                                                  : t.gpu;
    out += wrap_lines(
        fmt::format(
            "vram      {}: {} on {}, tierswap-nbd {}, store {}, {} connection{}", t.name, t.device, card,
            t.exporter_pid ? fmt::format("pid {} {}", t.exporter_pid, t.exporter_state) : std::string("none"),
            t.store.empty() ? "-" : t.store, t.connections, t.connections == 1 ? "" : "s"),
        width);
    if (!t.failure.empty()) out += wrap_lines("          FAILED: " + t.failure, width);
    if (t.exporter_live) {
      const std::string spill =
          t.spill.empty() ? std::string("no spill store")
                          : fmt::format("{} spilled to {} (ratio {:.2f})",
                                        format_bytes_short(t.spilled_bytes), t.spill, t.spill_ratio);
      out += wrap_lines(
          fmt::format("          VRAM {} resident, {}", format_bytes_short(t.resident_bytes), spill), width);
      out += wrap_lines(fmt::format("          {} requests, read {}, written {}, queue {}, p50 {:.0f} us, "
                                    "p99 {:.0f} us",
                                    t.exporter_requests, format_bytes_short(t.exporter_read_bytes),
                                    format_bytes_short(t.exporter_write_bytes), t.exporter_queue_depth,
                                    t.exporter_latency_p50_us, t.exporter_latency_p99_us),
                        width);
    }
  }

  out += '\n';
  out += fmt::format("memory    {} total, {} available\n", format_bytes_short(s.mem_total_bytes),
                     format_bytes_short(s.mem_available_bytes));
  out += fmt::format("pressure  memory some {}  full {}  (avg10/60/300 %)\n",
                     psi_triple(s.memory_pressure.some), psi_triple(s.memory_pressure.full));
  out += fmt::format("          io     some {}  full {}\n", psi_triple(s.io_pressure.some),
                     psi_triple(s.io_pressure.full));
  for (const auto& c : s.cgroup_pressure)
    out += shorten_left(fmt::format("cgroup    {} memory some {}  full {}", c.cgroup,
                                    psi_triple(c.memory.some), psi_triple(c.memory.full)),
                        width) +
           '\n';
  out +=
      fmt::format("swap      in {:.0f} pages/s, out {:.0f} pages/s, swappiness {}\n", s.swap_in_pages_per_s,
                  s.swap_out_pages_per_s, s.swappiness < 0 ? std::string("?") : std::to_string(s.swappiness));
  if (s.gpus.empty()) {
    out += "gpu       none\n";
  } else {
    for (const auto& g : s.gpus) {
      out += shorten_left(fmt::format("gpu       {}: {} free of {}, tier uses {}", g.name,
                                      format_bytes_short(g.free_bytes), format_bytes_short(g.total_bytes),
                                      format_bytes_short(g.used_by_tier_bytes)),
                          width) +
             '\n';
    }
  }
  // Suspend: what the daemon holds against it (only while it holds something).
  if (!s.suspend.inhibitor.empty() || !s.suspend.detail.empty()) {
    const std::string what = s.suspend.inhibitor == "block"   ? "BLOCKED"
                             : s.suspend.inhibitor == "delay" ? "delayed until drained"
                                                              : "not guarded";
    out += wrap_lines("suspend   " + what + (s.suspend.detail.empty() ? "" : ": " + s.suspend.detail), width);
  }
  // The policy engine's decisions, once there are any: "evacuate/reserve 2".
  if (!s.policy_actions.empty()) {
    std::string line = "policy   ";
    for (const auto& c : s.policy_actions) line += fmt::format(" {}/{} {}", c.action, c.rule, c.count);
    out += shorten_left(line, width) + '\n';
  }
  return out;
}

std::string render_watch_frame(const Status& s, const std::deque<double>& mem, const std::deque<double>& io,
                               int width) {
  std::string out = render_status(s, std::min(width, 80));
  out += "\n";
  for (const auto& t : s.tiers) {
    const double f = t.size_bytes ? double(t.used_bytes) / double(t.size_bytes) : 0.0;
    out += fmt::format("{:<12.12} {} {:5.1f}%  {}\n", t.name, usage_bar(f, 40), f * 100, to_string(t.state));
  }
  out += fmt::format("\nmem some avg10 {:6.2f}% {}\n", mem.empty() ? 0.0 : mem.back(), sparkline(mem, 1.0));
  out += fmt::format("io  some avg10 {:6.2f}% {}\n", io.empty() ? 0.0 : io.back(), sparkline(io, 1.0));
  out += "\nq or Ctrl-C quits\n";
  return out;
}

std::string usage_bar(double fraction, int cells) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int full = static_cast<int>(fraction * cells + 0.5);
  return "[" + std::string(full, '#') + std::string(cells - full, '.') + "]";
}

std::string sparkline(const std::deque<double>& values, double floor) {
  static const char* ticks[] = {" ",      "\u2581", "\u2582", "\u2583", "\u2584",
                                "\u2585", "\u2586", "\u2587", "\u2588"};
  double top = floor;
  for (double v : values) top = std::max(top, v);
  std::string out;
  for (double v : values) {
    int i = top > 0 ? static_cast<int>(v / top * 8 + 0.5) : 0;
    out += ticks[std::clamp(i, 0, 8)];
  }
  return out;
}

}  // namespace tierswap::ctl
