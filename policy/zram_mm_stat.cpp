#include "policy/zram_mm_stat.hpp"

#include <charconv>
#include <string>

namespace tierswap::policy {

Result<ZramMmStat> parse_zram_mm_stat(std::string_view text) {
  static const char* names[] = {"orig_data_size",  "compr_data_size", "mem_used_total",
                                "mem_limit",       "mem_used_max",    "same_pages",
                                "pages_compacted", "huge_pages",      "huge_pages_since"};
  ZramMmStat s;
  std::uint64_t* fields[] = {&s.orig_data_size,  &s.compr_data_size, &s.mem_used_total,
                             &s.mem_limit,       &s.mem_used_max,    &s.same_pages,
                             &s.pages_compacted, &s.huge_pages,      &s.huge_pages_since};
  std::size_t col = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  while (p < end && col < 9) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n')) ++p;
    if (p == end) break;
    auto [next, ec] = std::from_chars(p, end, *fields[col]);
    if (ec != std::errc{} || (next < end && *next != ' ' && *next != '\t' && *next != '\n')) {
      return fail(EINVAL, std::string("mm_stat: column ") + std::to_string(col + 1) + " (" + names[col] +
                              ") is not a number");
    }
    p = next;
    ++col;
  }
  if (col < 7) {
    return fail(EINVAL, "mm_stat: " + std::to_string(col) +
                            " columns, expected at least 7 (orig_data_size ... pages_compacted)");
  }
  return s;
}

}  // namespace tierswap::policy
