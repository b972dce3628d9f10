#include "bench/swap/plots.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "bench/swap/samples.hpp"
#include "bench/swap/stats.hpp"

namespace tierswap::bench {
namespace {

constexpr Rgb kBlack{0.1, 0.1, 0.1}, kGrid{0.85, 0.85, 0.85}, kWhite{1, 1, 1};
// Colour-blind-safe (Okabe–Ito), in group order.
constexpr Rgb kPalette[] = {{0.0, 0.447, 0.698},   {0.835, 0.369, 0.0}, {0.0, 0.620, 0.451},
                            {0.800, 0.475, 0.655}, {0.902, 0.624, 0.0}, {0.337, 0.706, 0.914},
                            {0.941, 0.894, 0.259}};

struct Frame {
  double left = 70, right, top = 40, bottom;
  double x0, x1, y0, y1;  // data range
  bool log_x = false;
  [[nodiscard]] double px(double x) const {
    const double a = log_x ? std::log10(x) : x, lo = log_x ? std::log10(x0) : x0,
                 hi = log_x ? std::log10(x1) : x1;
    return left + (a - lo) / (hi - lo) * (right - left);
  }
  [[nodiscard]] double py(double y) const { return bottom - (y - y0) / (y1 - y0) * (bottom - top); }
};

std::string fmt(double v) {
  char b[32];
  if (v >= 1e6 && std::fmod(v, 1e6) == 0)
    std::snprintf(b, sizeof b, "%.0fM", v / 1e6);
  else if (v >= 1000 && std::fmod(v, 1000) == 0)
    std::snprintf(b, sizeof b, "%.0fk", v / 1000);
  else
    std::snprintf(b, sizeof b, v >= 10 || v == 0 ? "%.0f" : "%.2g", v);
  return b;
}

std::vector<const Group*> ok_groups(const Report& r) {
  std::vector<const Group*> g;
  for (const auto& x : r.groups)
    if (x.status == "ok") g.push_back(&x);
  return g;
}

void frame(Canvas& c, const Frame& f, int width, int height, const std::string& title,
           const std::string& xlabel, const std::string& ylabel, const std::vector<double>& xticks,
           const std::vector<double>& yticks) {
  c.rect(0, 0, width, height, kWhite);
  for (double x : xticks) {
    c.line(f.px(x), f.top, f.px(x), f.bottom, kGrid, 1, false);
    c.text(f.px(x), f.bottom + 16, fmt(x), 11, Anchor::middle, kBlack);
  }
  for (double y : yticks) {
    c.line(f.left, f.py(y), f.right, f.py(y), kGrid, 1, false);
    c.text(f.left - 6, f.py(y) + 4, fmt(y), 11, Anchor::end, kBlack);
  }
  c.line(f.left, f.bottom, f.right, f.bottom, kBlack, 1, false);
  c.line(f.left, f.top, f.left, f.bottom, kBlack, 1, false);
  c.text(width / 2.0, 24, title, 15, Anchor::middle, kBlack);
  c.text((f.left + f.right) / 2, height - 10, xlabel, 12, Anchor::middle, kBlack);
  c.text(18, (f.top + f.bottom) / 2, ylabel, 12, Anchor::middle, kBlack, true);
}

void legend(Canvas& c, const Frame& f, const std::vector<const Group*>& groups, bool right_bottom) {
  const double x = f.right - 150;
  double y = right_bottom ? f.bottom - 20.0 * static_cast<double>(groups.size()) : f.top + 14;
  for (std::size_t i = 0; i < groups.size(); ++i, y += 20) {
    const Rgb col = kPalette[i % std::size(kPalette)];
    c.line(x, y, x + 24, y, col, 2.5, false);
    c.text(x + 30, y + 4, groups[i]->name, 12, Anchor::start, kBlack);
  }
}

}  // namespace

void draw_latency_cdf(Canvas& c, const Report& r, int width, int height) {
  const auto groups = ok_groups(r);
  double lo = 1e300, hi = 0;
  for (const auto* g : groups)
    for (double v : g->probe_us)
      if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
  if (hi <= 0) lo = 1, hi = 10;
  // Whole decades around the data.
  Frame f;
  f.right = width - 20;
  f.bottom = height - 40;
  f.log_x = true;
  f.x0 = std::pow(10, std::floor(std::log10(lo)));
  f.x1 = std::pow(10, std::ceil(std::log10(hi)));
  if (f.x1 <= f.x0) f.x1 = f.x0 * 10;
  f.y0 = 0;
  f.y1 = 1;
  std::vector<double> xt;
  for (double d = f.x0; d <= f.x1 * 1.0001; d *= 10) xt.push_back(d);
  frame(c, f, width, height, "perceived latency (a fixed task, outside the bench cgroup)",
        "latency (µs, log)", "fraction of runs ≤ latency", xt, {0, 0.25, 0.5, 0.75, 0.9, 1});
  for (std::size_t i = 0; i < groups.size(); ++i) {
    std::vector<std::pair<double, double>> pts;
    for (const auto& [v, p] : cdf(groups[i]->probe_us, 300))
      if (v > 0) pts.emplace_back(f.px(v), f.py(p));
    c.series(pts, kPalette[i % std::size(kPalette)], 2, groups[i]->name);
  }
  legend(c, f, groups, true);
}

void draw_psi(Canvas& c, const Report& r, int width, int height) {
  const auto groups = ok_groups(r);
  double tmax = 1, ymax = 0;
  std::vector<std::vector<Interval>> iv;
  for (const auto* g : groups) {
    iv.push_back(intervals(g->samples));
    for (const auto& x : iv.back()) tmax = std::max(tmax, x.t), ymax = std::max(ymax, x.full_pct);
  }
  Frame f;
  f.right = width - 20;
  f.bottom = height - 40;
  f.x0 = 0;
  f.x1 = std::ceil(tmax / 5) * 5;
  f.y0 = 0;
  const double steps[] = {1, 2, 5, 10, 20, 25, 50, 100};
  double step = 100;
  for (double s : steps)
    if (ymax <= s * 4) {
      step = s;
      break;
    }
  f.y1 = std::min(100.0, std::max(step, std::ceil(ymax / step) * step));
  std::vector<double> xt, yt;
  const double xs = f.x1 <= 30 ? 5 : f.x1 <= 120 ? 10 : 30;
  for (double x = 0; x <= f.x1 + 1e-9; x += xs) xt.push_back(x);
  for (double y = 0; y <= f.y1 + 1e-9; y += step) yt.push_back(y);
  frame(c, f, width, height, "memory pressure during the load (PSI full, whole system)", "time (s)",
        "% of each second stalled", xt, yt);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    std::vector<std::pair<double, double>> pts;
    for (const auto& x : iv[i]) pts.emplace_back(f.px(x.t), f.py(std::min(x.full_pct, f.y1)));
    c.series(pts, kPalette[i % std::size(kPalette)], 2, groups[i]->name);
  }
  legend(c, f, groups, false);
}

Result<std::vector<std::string>> write_plots(const Report& r, const std::string& dir,
                                             std::string* png_skipped) {
  std::vector<std::string> out;
  using Draw = void (*)(Canvas&, const Report&, int, int);
  for (auto [name, draw] :
       {std::pair<const char*, Draw>{"latency-cdf", &draw_latency_cdf}, {"psi", &draw_psi}}) {
    SvgCanvas svg(kPlotWidth, kPlotHeight);
    draw(svg, r, kPlotWidth, kPlotHeight);
    const std::string svg_path = dir + "/" + name + ".svg";
    std::ofstream f(svg_path);
    f << svg.str();
    f.close();
    if (!f) return fail(EIO, svg_path + ": cannot write the SVG");
    out.push_back(svg_path);
    CairoCanvas png(kPlotWidth, kPlotHeight);
    draw(png, r, kPlotWidth, kPlotHeight);
    const std::string png_path = dir + "/" + name + ".png";
    if (auto w = png.write_png(png_path); !w) {
      // No libcairo on this machine: the SVG above holds the same drawing.
      if (w.error().kind == ErrorKind::unsupported) {
        if (png_skipped) *png_skipped = w.error().message;
        continue;
      }
      return std::unexpected(w.error());
    }
    out.push_back(png_path);
  }
  return out;
}

}  // namespace tierswap::bench
