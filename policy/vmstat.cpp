#include "policy/vmstat.hpp"

#include <charconv>

#include "backends/hostfs/paths.hpp"
#include "policy/lines.hpp"

namespace tierswap::policy {

Result<Vmstat> parse_vmstat(std::string_view text) {
  return parse_lines<Vmstat>(
      text, paths::proc_vmstat,
      [](const std::string& where, std::string_view line, Vmstat& v) -> Result<void> {
        const auto sp = line.find(' ');
        std::uint64_t n = 0;
        if (sp == std::string_view::npos || sp == 0 ||
            std::from_chars(line.data() + sp + 1, line.data() + line.size(), n).ec != std::errc{})
          return fail(EINVAL, where + ": expected \"name number\"");
        v[std::string(line.substr(0, sp))] = n;
        return {};
      });
}

SwapRates swap_rates(const Vmstat& before, const Vmstat& after, double seconds) {
  SwapRates r;
  if (seconds <= 0) return r;
  auto rate = [&](std::string_view k) {
    auto a = before.find(k), b = after.find(k);
    if (a == before.end() || b == after.end() || b->second < a->second) return 0.0;
    return double(b->second - a->second) / seconds;
  };
  r.in_pages_per_s = rate("pswpin");
  r.out_pages_per_s = rate("pswpout");
  return r;
}

}  // namespace tierswap::policy
