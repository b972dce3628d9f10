#include <cstdio>

#include "bench/swap/canvas.hpp"

namespace tierswap::bench {
namespace {

std::string color(Rgb c) {
  char b[16];
  auto v = [](double x) { return static_cast<int>(x < 0 ? 0 : x > 1 ? 255 : x * 255 + 0.5); };
  std::snprintf(b, sizeof b, "#%02x%02x%02x", v(c.r), v(c.g), v(c.b));
  return b;
}

std::string n(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string escape(std::string_view s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += ch;
    }
  }
  return o;
}

}  // namespace

SvgCanvas::SvgCanvas(int width, int height) : width_(width), height_(height) {}

void SvgCanvas::rect(double x, double y, double w, double h, Rgb fill) {
  body_ += "<rect x=\"" + n(x) + "\" y=\"" + n(y) + "\" width=\"" + n(w) + "\" height=\"" + n(h) +
           "\" fill=\"" + color(fill) + "\"/>\n";
}

void SvgCanvas::line(double x1, double y1, double x2, double y2, Rgb stroke, double width, bool dashed) {
  body_ += "<line x1=\"" + n(x1) + "\" y1=\"" + n(y1) + "\" x2=\"" + n(x2) + "\" y2=\"" + n(y2) +
           "\" stroke=\"" + color(stroke) + "\" stroke-width=\"" + n(width) + "\"" +
           (dashed ? " stroke-dasharray=\"4 3\"" : "") + "/>\n";
}

void SvgCanvas::series(const std::vector<std::pair<double, double>>& points, Rgb stroke, double width,
                       std::string_view name) {
  std::string pts;
  for (const auto& [x, y] : points) pts += (pts.empty() ? "" : " ") + n(x) + "," + n(y);
  body_ += "<polyline class=\"series\" data-series=\"" + escape(name) + "\" fill=\"none\" stroke=\"" +
           color(stroke) + "\" stroke-width=\"" + n(width) + "\" stroke-linejoin=\"round\" points=\"" + pts +
           "\"/>\n";
}

void SvgCanvas::text(double x, double y, std::string_view s, double size, Anchor anchor, Rgb fill,
                     bool vertical) {
  const char* a = anchor == Anchor::start ? "start" : anchor == Anchor::middle ? "middle" : "end";
  body_ += "<text x=\"" + n(x) + "\" y=\"" + n(y) + "\" font-family=\"sans-serif\" font-size=\"" + n(size) +
           "\" text-anchor=\"" + a + "\" fill=\"" + color(fill) + "\"" +
           (vertical ? " transform=\"rotate(-90 " + n(x) + " " + n(y) + ")\"" : "") + ">" + escape(s) +
           "</text>\n";
}

std::string SvgCanvas::str() const {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         std::to_string(width_) + "\" height=\"" + std::to_string(height_) + "\" viewBox=\"0 0 " +
         std::to_string(width_) + " " + std::to_string(height_) + "\">\n" + body_ + "</svg>\n";
}

}  // namespace tierswap::bench
