#include <cairo.h>
#include <dlfcn.h>

#include <string>

#include "bench/swap/canvas.hpp"

namespace tierswap::bench {

namespace {

// libcairo is opened when the first picture is drawn, not when a program
// that links this library starts: its chain (pixman, fontconfig, freetype,
// X11) costs about 5 ms at every start of tierswapctl, `status` included.
// The package depends on libcairo2 (packaging/CMakeLists.txt).
#define TIERSWAP_CAIRO_FUNCTIONS(X) \
  X(image_surface_create)           \
  X(create)                         \
  X(select_font_face)               \
  X(destroy)                        \
  X(surface_destroy)                \
  X(set_source_rgb)                 \
  X(rectangle)                      \
  X(fill)                           \
  X(set_line_width)                 \
  X(set_dash)                       \
  X(move_to)                        \
  X(line_to)                        \
  X(stroke)                         \
  X(set_line_join)                  \
  X(set_font_size)                  \
  X(text_extents)                   \
  X(save)                           \
  X(translate)                      \
  X(rotate)                         \
  X(show_text)                      \
  X(restore)                        \
  X(surface_flush)                  \
  X(surface_write_to_png)           \
  X(status_to_string)

struct CairoLib {
#define TIERSWAP_CAIRO_POINTER(name) decltype(&::cairo_##name) name = nullptr;
  TIERSWAP_CAIRO_FUNCTIONS(TIERSWAP_CAIRO_POINTER)
#undef TIERSWAP_CAIRO_POINTER
  std::string error;  // empty: every function was found
};

const CairoLib& cairo_lib() {
  static const CairoLib lib = [] {
    CairoLib l;
    void* h = ::dlopen("libcairo.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = ::dlerror();
      l.error = std::string("libcairo.so.2 cannot be loaded (") + (e ? e : "?") + "; install libcairo2)";
      return l;
    }
#define TIERSWAP_CAIRO_RESOLVE(name)                                       \
  l.name = reinterpret_cast<decltype(l.name)>(::dlsym(h, "cairo_" #name)); \
  if (l.name == nullptr && l.error.empty()) l.error = "libcairo.so.2 lacks cairo_" #name;
    TIERSWAP_CAIRO_FUNCTIONS(TIERSWAP_CAIRO_RESOLVE)
#undef TIERSWAP_CAIRO_RESOLVE
    return l;
  }();
  return lib;
}

bool have_cairo() {
  return cairo_lib().error.empty();
}

}  // namespace

// The calls below read as cairo's own; each goes through the loaded table.
#define cairo_image_surface_create cairo_lib().image_surface_create
#define cairo_create cairo_lib().create
#define cairo_select_font_face cairo_lib().select_font_face
#define cairo_destroy cairo_lib().destroy
#define cairo_surface_destroy cairo_lib().surface_destroy
#define cairo_set_source_rgb cairo_lib().set_source_rgb
#define cairo_rectangle cairo_lib().rectangle
#define cairo_fill cairo_lib().fill
#define cairo_set_line_width cairo_lib().set_line_width
#define cairo_set_dash cairo_lib().set_dash
#define cairo_move_to cairo_lib().move_to
#define cairo_line_to cairo_lib().line_to
#define cairo_stroke cairo_lib().stroke
#define cairo_set_line_join cairo_lib().set_line_join
#define cairo_set_font_size cairo_lib().set_font_size
#define cairo_text_extents cairo_lib().text_extents
#define cairo_save cairo_lib().save
#define cairo_translate cairo_lib().translate
#define cairo_rotate cairo_lib().rotate
#define cairo_show_text cairo_lib().show_text
#define cairo_restore cairo_lib().restore
#define cairo_surface_flush cairo_lib().surface_flush
#define cairo_surface_write_to_png cairo_lib().surface_write_to_png
#define cairo_status_to_string cairo_lib().status_to_string

struct CairoCanvas::Impl {
  cairo_surface_t* surface = nullptr;
  cairo_t* cr = nullptr;
};

CairoCanvas::CairoCanvas(int width, int height) : impl_(std::make_unique<Impl>()) {
  if (!have_cairo()) return;  // every call below is then a no-op; write_png() says why
  impl_->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
  impl_->cr = cairo_create(impl_->surface);
  cairo_select_font_face(impl_->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

CairoCanvas::~CairoCanvas() {
  if (impl_->cr == nullptr) return;
  cairo_destroy(impl_->cr);
  cairo_surface_destroy(impl_->surface);
}

void CairoCanvas::rect(double x, double y, double w, double h, Rgb fill) {
  if (impl_->cr == nullptr) return;
  cairo_set_source_rgb(impl_->cr, fill.r, fill.g, fill.b);
  cairo_rectangle(impl_->cr, x, y, w, h);
  cairo_fill(impl_->cr);
}

void CairoCanvas::line(double x1, double y1, double x2, double y2, Rgb stroke, double width, bool dashed) {
  if (impl_->cr == nullptr) return;
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
  if (points.empty() || impl_->cr == nullptr) return;
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
  if (impl_->cr == nullptr) return;
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
  if (impl_->cr == nullptr) return fail(ErrorKind::unsupported, path + ": no PNG: " + cairo_lib().error);
  cairo_surface_flush(impl_->surface);
  const cairo_status_t st = cairo_surface_write_to_png(impl_->surface, path.c_str());
  if (st != CAIRO_STATUS_SUCCESS)
    return fail(EIO, path + ": cannot write the PNG (" + cairo_status_to_string(st) + ")");
  return {};
}

}  // namespace tierswap::bench
