// Size expressions: "8G", "1.5G", "4096K", "1048576", "50%", "ram * 0.25",
// "ram / 2", "min(ram / 2, 8G)", "max(a, b)", "25% of vram".
//
// Grammar (whitespace is free; names and units are case-insensitive):
//   expr    := term (('+' | '-') term)*
//   term    := unary (('*' | '/') unary)*
//   unary   := ('-' | '+') unary | primary
//   primary := NUMBER [UNIT] | NUMBER '%' ['of' ('ram' | 'vram')]
//            | 'ram' | 'vram' | ('min' | 'max') '(' expr (',' expr)* ')'
//            | '(' expr ')'
//   UNIT    := B | K | M | G | T | KiB | MiB | GiB | TiB   (binary: K = 1024)
// "N%" alone means N% of RAM. A bare number is a scalar ("ram * 0.25"); an
// expression that ends up a scalar is a byte count ("1048576"). Sizes times
// sizes, and scalars divided by sizes, are refused: they are always typos.
// Nesting (parentheses, min/max, signs) deeper than 64 levels is refused.
//
// The public entry point is parse_size() in config/loader.hpp; the loader
// uses evaluate_size() for the extra knobs (vram allowed, page rounding).
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "config/spec.hpp"

namespace tierswap::config {

struct SizeOptions {
  // "vram" and "N% of vram" are accepted only for vram tiers.
  bool allow_vram = false;
  // Round the result down to whole 4 KiB pages (swap areas are page-sized).
  bool round_to_page = false;
};

struct SizeValue {
  std::uint64_t bytes = 0;  // 0 when !resolved
  // false when the expression uses vram and HostFacts.vram_bytes is 0: the
  // syntax is valid and the value is left to whoever learns the GPU's size.
  bool resolved = true;
};

// What is wrong, split the way Diagnostic prints it.
struct SizeProblem {
  std::string message;  // "\"12X\" is not a size"
  std::string hint;     // "try 8G, 50%, min(ram / 2, 8G)"
};

// Parses and evaluates `expr`. Errors: garbage, unknown unit or name,
// vram where not allowed, RAM unknown (ram_bytes 0) while used, division by
// zero, a result <= 0 (or < one page with round_to_page), or > 2^62 bytes.
std::expected<SizeValue, SizeProblem> evaluate_size(std::string_view expr, const HostFacts& host,
                                                    const SizeOptions& options = {});

}  // namespace tierswap::config
