#include <cairo.h>

#include <string>

#include "bench/swap/canvas.hpp"

namespace tierswap::bench {

struct CairoCanvas::Impl {
  cairo_surface_t* surface = nullptr;
  cairo_t* cr = nullptr;
};

CairoCanvas::CairoCanvas(int width, int height) : impl_(std::make_unique<Impl>()) {
  impl_->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
  impl_->cr = cairo_create(impl_->surface);
  cairo_select_font_face(impl_->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

CairoCanvas::~CairoCanvas() {
  cairo_destroy(impl_->cr);
  cairo_surface_destroy(impl_->surface);
}

void CairoCanvas::rect(double x, double y, double w, double h, Rgb fill) {
  cairo_set_source_rgb(impl_->cr, fill.r, fill.g, fill.b);
  cairo_rectangle(impl_->cr, x, y, w, h);
  cairo_fill(impl_->cr);
}

void CairoCanvas::line(double x1, double y1, double x2, double y2, Rgb stroke, double width, bool dashed) {
  cairo_t* cr = impl_->cr;
  cairo_set_source_rgb(cr, stroke.r, stroke.g, stroke.b);
  cairo_set_line_width(cr, width);
  const double dash[] = {4, 3};
  cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
  cairo_move_to(cr, x1, y1);
  cairo_line_to(cr, x2, y2);
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
}

void CairoCanvas::series(const std::vector<std::pair<double, double>>& points, Rgb stroke, double width,
                         std::string_view) {
  if (points.empty()) return;
  cairo_t* cr = impl_->cr;
  cairo_set_source_rgb(cr, stroke.r, stroke.g, stroke.b);
  cairo_set_line_width(cr, width);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_move_to(cr, points.front().first, points.front().second);
  for (std::size_t i = 1; i < points.size(); ++i) cairo_line_to(cr, points[i].first, points[i].second);
  cairo_stroke(cr);
}

void CairoCanvas::text(double x, double y, std::string_view s, double size, Anchor anchor, Rgb fill,
                       bool vertical) {
  cairo_t* cr = impl_->cr;
  const std::string str(s);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, str.c_str(), &ext);
  const double shift = anchor == Anchor::start    ? 0
                       : anchor == Anchor::middle ? ext.x_advance / 2
                                                  : ext.x_advance;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (vertical) cairo_rotate(cr, -1.5707963267948966);
  cairo_move_to(cr, -shift, 0);
  cairo_set_source_rgb(cr, fill.r, fill.g, fill.b);
  cairo_show_text(cr, str.c_str());
  cairo_restore(cr);
}

Result<void> CairoCanvas::write_png(const std::string& path) const {
  cairo_surface_flush(impl_->surface);
  const cairo_status_t st = cairo_surface_write_to_png(impl_->surface, path.c_str());
  if (st != CAIRO_STATUS_SUCCESS)
    return fail(EIO, path + ": cannot write the PNG (" + cairo_status_to_string(st) + ")");
  return {};
}

}  // namespace tierswap::bench
