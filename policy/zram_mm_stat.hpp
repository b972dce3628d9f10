// /sys/block/zramN/mm_stat text -> values. Columns (Documentation/admin-guide/
// blockdev/zram.rst): orig_data_size compr_data_size mem_used_total mem_limit
// mem_used_max same_pages pages_compacted huge_pages [huge_pages_since]; the
// first three are bytes. Older kernels have fewer trailing columns.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.hpp"

namespace tierswap::policy {

struct ZramMmStat {
  std::uint64_t orig_data_size = 0, compr_data_size = 0, mem_used_total = 0;
  std::uint64_t mem_limit = 0, mem_used_max = 0, same_pages = 0, pages_compacted = 0;
  std::uint64_t huge_pages = 0, huge_pages_since = 0;

  // orig / compr; 1 when nothing is stored.
  [[nodiscard]] double compression_ratio() const {
    return compr_data_size ? double(orig_data_size) / double(compr_data_size) : 1.0;
  }
};

// Needs at least the first 7 columns; EINVAL naming the column otherwise.
Result<ZramMmStat> parse_zram_mm_stat(std::string_view text);

}  // namespace tierswap::policy
