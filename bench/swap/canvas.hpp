// The few drawing primitives the bench's plots use, with two back ends that
// draw the same calls: SvgCanvas (text, no library) and CairoCanvas (PNG,
// libcairo's image surface). plots.cpp draws each picture once against
// this interface, so the SVG and the PNG cannot disagree.
//
// Coordinates are pixels from the top left; colours are 0..1 RGB.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace tierswap::bench {

struct Rgb {
  double r = 0, g = 0, b = 0;
};

enum class Anchor { start, middle, end };

class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void rect(double x, double y, double w, double h, Rgb fill) = 0;
  virtual void line(double x1, double y1, double x2, double y2, Rgb stroke, double width, bool dashed) = 0;
  // A data series: `name` labels it (the SVG keeps it as data-series).
  virtual void series(const std::vector<std::pair<double, double>>& points, Rgb stroke, double width,
                      std::string_view name) = 0;
  virtual void text(double x, double y, std::string_view s, double size, Anchor anchor, Rgb fill,
                    bool vertical = false) = 0;
};

class SvgCanvas final : public Canvas {
 public:
  SvgCanvas(int width, int height);
  void rect(double x, double y, double w, double h, Rgb fill) override;
  void line(double x1, double y1, double x2, double y2, Rgb stroke, double width, bool dashed) override;
  void series(const std::vector<std::pair<double, double>>& points, Rgb stroke, double width,
              std::string_view name) override;
  void text(double x, double y, std::string_view s, double size, Anchor anchor, Rgb fill,
            bool vertical) override;
  // The finished document.
  [[nodiscard]] std::string str() const;

 private:
  int width_, height_;
  std::string body_;
};

// Draws into an ARGB32 image; write_png() saves it. Text uses cairo's
// "toy" font API with the sans-serif family (no font files needed).
class CairoCanvas final : public Canvas {
 public:
  CairoCanvas(int width, int height);
  ~CairoCanvas() override;
  CairoCanvas(const CairoCanvas&) = delete;
  CairoCanvas& operator=(const CairoCanvas&) = delete;
  void rect(double x, double y, double w, double h, Rgb fill) override;
  void line(double x1, double y1, double x2, double y2, Rgb stroke, double width, bool dashed) override;
  void series(const std::vector<std::pair<double, double>>& points, Rgb stroke, double width,
              std::string_view name) override;
  void text(double x, double y, std::string_view s, double size, Anchor anchor, Rgb fill,
            bool vertical) override;
  // EIO naming `path` when cairo cannot write it.
  Result<void> write_png(const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierswap::bench
