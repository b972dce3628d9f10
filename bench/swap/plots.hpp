// The report's pictures, drawn against Canvas (canvas.hpp) so that the SVG
// and the PNG are the same drawing:
//   latency-cdf: the perceived-latency task's CDF, one line per group,
//                latency on a log axis;
//   psi:         memory PSI "full" (system, percent of each second) over
//                the load, one line per group.
// Only groups that ran ("ok") are drawn; each is one series.
#pragma once

#include <string>
#include <vector>

#include "bench/swap/canvas.hpp"
#include "bench/swap/report.hpp"
#include "common/result.hpp"

namespace tierswap::bench {

inline constexpr int kPlotWidth = 800, kPlotHeight = 480;

void draw_latency_cdf(Canvas& c, const Report& r, int width = kPlotWidth, int height = kPlotHeight);
void draw_psi(Canvas& c, const Report& r, int width = kPlotWidth, int height = kPlotHeight);

// Writes latency-cdf.{svg,png} and psi.{svg,png} into `dir`; returns their
// paths. EIO naming the file that could not be written. Where libcairo
// cannot be loaded, only the SVG pictures are written and `png_skipped`
// (when given) says why.
Result<std::vector<std::string>> write_plots(const Report& r, const std::string& dir,
                                             std::string* png_skipped = nullptr);

}  // namespace tierswap::bench
