// A small recursive-descent evaluator for size expressions (grammar in
// size_expr.hpp). Values carry a dimension (size or scalar) so that
// "ram * 0.25" works and "ram * 8G" is refused, and a "known" flag so that
// an expression over an unknown VRAM size still gets its syntax checked.
#include "config/size_expr.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "config/loader.hpp"

namespace tierswap::config {
namespace {

constexpr const char* kSizeHint = "try 8G, 50%, min(ram / 2, 8G)";
constexpr long double kPage = 4096.0L;
constexpr int kMaxDepth = 64;                              // nested unary()s: parentheses, min/max, signs
constexpr long double kMaxBytes = 4611686018427387904.0L;  // 2^62: far beyond any swap area

struct Value {
  long double v = 0;
  bool size = false;  // bytes (true) or a plain number (false)
  bool known = true;  // false: depends on an unknown VRAM size
};

// Thrown inside the parser only; evaluate_size() turns it into SizeProblem.
struct ParseError {
  SizeProblem problem;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Parser {
 public:
  Parser(std::string_view text, const HostFacts& host, const SizeOptions& options)
      : text_(text), host_(host), options_(options) {}

  Value parse() {
    Value v = expr();
    skip_space();
    if (pos_ != text_.size()) not_a_size();
    return v;
  }

 private:
  [[noreturn]] void not_a_size() const {
    throw ParseError{{fmt::format("\"{}\" is not a size", text_), kSizeHint}};
  }
  [[noreturn]] void fail(std::string message, std::string hint = kSizeHint) const {
    throw ParseError{{std::move(message), std::move(hint)}};
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // Reads a run of letters without consuming it when `consume` is false.
  std::string word(bool consume = true) {
    skip_space();
    std::size_t end = pos_;
    while (end < text_.size() && std::isalpha(static_cast<unsigned char>(text_[end]))) ++end;
    std::string w = lower(text_.substr(pos_, end - pos_));
    if (consume) pos_ = end;
    return w;
  }

  Value expr() {
    Value left = term();
    for (;;) {
      if (eat('+')) {
        left = add(left, term(), +1);
      } else if (eat('-')) {
        left = add(left, term(), -1);
      } else {
        return left;
      }
    }
  }

  Value term() {
    Value left = unary();
    for (;;) {
      if (eat('*')) {
        Value right = unary();
        if (left.size && right.size)
          fail(fmt::format("\"{}\" multiplies two sizes", text_), "multiply a size by a number: ram * 0.25");
        left = {left.v * right.v, left.size || right.size, left.known && right.known};
      } else if (eat('/')) {
        Value right = unary();
        if (!left.size && right.size)
          fail(fmt::format("\"{}\" divides a number by a size", text_), "divide a size by a number: ram / 2");
        if (right.known && right.v == 0) fail(fmt::format("\"{}\" divides by zero", text_));
        // size / size is a ratio: a plain number.
        left = {right.v == 0 ? 0 : left.v / right.v, left.size && !right.size, left.known && right.known};
      } else {
        return left;
      }
    }
  }

  static Value add(const Value& a, const Value& b, int sign) {
    // A bare number next to a size is a byte count ("ram - 1048576").
    return {a.v + sign * b.v, a.size || b.size, a.known && b.known};
  }

  // Every nesting ("(", "min(", a sign) passes through here; the bound keeps
  // a hostile size ("((((...", "----...") from overflowing the stack.
  Value unary() {
    if (++depth_ > kMaxDepth)
      fail(fmt::format("\"{}\" nests too deeply", text_), "use at most a few levels of parentheses");
    Value v;
    if (eat('-')) {
      v = unary();
      v.v = -v.v;
    } else if (eat('+')) {
      v = unary();
    } else {
      v = primary();
    }
    --depth_;
    return v;
  }

  Value primary() {
    skip_space();
    if (pos_ >= text_.size()) not_a_size();
    char c = text_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return number();
    if (eat('(')) {
      Value v = expr();
      if (!eat(')')) not_a_size();
      return v;
    }
    std::string name = word();
    if (name == "ram") return ram();
    if (name == "vram") return vram();
    if (name == "min" || name == "max") return min_max(name == "min");
    not_a_size();
  }

  Value ram() {
    if (host_.ram_bytes == 0)
      fail(fmt::format("\"{}\" depends on the RAM size, which is unknown here", text_),
           "give an absolute size such as 8G");
    return {static_cast<long double>(host_.ram_bytes), true, true};
  }

  Value vram() {
    if (!options_.allow_vram)
      fail(fmt::format("\"{}\" uses vram, which only a vram tier's size may", text_),
           "use ram, a percentage of RAM, or an absolute size such as 8G");
    if (host_.vram_bytes == 0) return {0, true, false};
    return {static_cast<long double>(host_.vram_bytes), true, true};
  }

  Value min_max(bool is_min) {
    if (!eat('(')) not_a_size();
    Value best = expr();
    while (eat(',')) {
      Value next = expr();
      bool take = is_min ? next.v < best.v : next.v > best.v;
      best = {take ? next.v : best.v, best.size || next.size, best.known && next.known};
    }
    if (!eat(')')) not_a_size();
    return best;
  }

  Value number() {
    std::size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.'))
      ++pos_;
    std::string digits(text_.substr(start, pos_ - start));
    if (digits.find('.') != digits.rfind('.') || digits == ".") not_a_size();
    long double n = std::strtold(digits.c_str(), nullptr);

    if (eat('%')) {
      // "N%" and "N% of ram" are RAM; "N% of vram" is VRAM.
      std::size_t before = pos_;
      if (word() == "of") {
        std::string what = word();
        Value base = what == "ram" ? ram() : what == "vram" ? vram() : (not_a_size(), Value{});
        return {n / 100 * base.v, true, base.known};
      }
      pos_ = before;
      Value base = ram();
      return {n / 100 * base.v, true, true};
    }

    std::string unit = word(false);
    long double scale = 0;
    if (unit == "b")
      scale = 1;
    else if (unit == "k" || unit == "kib")
      scale = 1024.0L;
    else if (unit == "m" || unit == "mib")
      scale = 1024.0L * 1024;
    else if (unit == "g" || unit == "gib")
      scale = 1024.0L * 1024 * 1024;
    else if (unit == "t" || unit == "tib")
      scale = 1024.0L * 1024 * 1024 * 1024;
    if (scale != 0) {
      word();
      return {n * scale, true, true};
    }
    // Letters after a number that are not a unit ("12X", "8GB", "2 ram").
    if (!unit.empty()) not_a_size();
    return {n, false, true};
  }

  std::string_view text_;
  const HostFacts& host_;
  const SizeOptions& options_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

std::expected<SizeValue, SizeProblem> evaluate_size(std::string_view expr, const HostFacts& host,
                                                    const SizeOptions& options) {
  Value v;
  try {
    v = Parser(expr, host, options).parse();
  } catch (const ParseError& e) {
    return std::unexpected(e.problem);
  }
  if (!v.known) return SizeValue{0, false};
  if (!std::isfinite(static_cast<double>(v.v)) || v.v > kMaxBytes)
    return std::unexpected(
        SizeProblem{fmt::format("size \"{}\" is too large", expr), "sizes go up to a few TiB"});
  // The nudge keeps "10% of ram" from losing a byte to binary fractions.
  long double bytes = std::floor(v.v + 0.001L);
  if (bytes <= 0)
    return std::unexpected(
        SizeProblem{fmt::format("size must be greater than zero (\"{}\")", expr), kSizeHint});
  if (options.round_to_page) {
    bytes = std::floor(bytes / kPage) * kPage;
    if (bytes <= 0)
      return std::unexpected(
          SizeProblem{fmt::format("size must be at least one page, 4K (\"{}\")", expr), kSizeHint});
  }
  return SizeValue{static_cast<std::uint64_t>(bytes), true};
}

Result<std::uint64_t> parse_size(std::string_view expr, const HostFacts& host) {
  auto v = evaluate_size(expr, host, SizeOptions{.allow_vram = true, .round_to_page = false});
  if (!v) return fail(ErrorKind::invalid_config, v.error().message + " (" + v.error().hint + ")");
  if (!v->resolved)
    return fail(ErrorKind::invalid_config,
                fmt::format("\"{}\" depends on the VRAM size, which is unknown here", expr));
  return v->bytes;
}

}  // namespace tierswap::config
