// Fuzz target: the parsers of what the kernel reports (text in, values
// out): PSI, /proc/meminfo, /proc/vmstat, zram mm_stat, /proc/swaps, and the
// policy trace reader (JSON lines). The first byte picks the parser, the
// rest is its text.
//
// Asserted beyond "no sanitizer report / no uncaught exception":
//  - every error has a message;
//  - /proc/swaps: every area has a non-empty path;
//  - traces: time never goes back (trace.hpp's contract).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/swap/proc_swaps.hpp"
#include "policy/meminfo.hpp"
#include "policy/psi.hpp"
#include "policy/trace.hpp"
#include "policy/vmstat.hpp"
#include "policy/zram_mm_stat.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tierswap;

namespace {
template <typename R>
void check_error(const R& r, const char* what) {
  if (!r) FUZZ_CHECK(!r.error().message.empty(), what);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      check_error(policy::parse_psi(text, "memory.pressure"), "parse_psi error without a message");
      break;
    case 1:
      check_error(policy::parse_meminfo(text), "parse_meminfo error without a message");
      break;
    case 2:
      check_error(policy::parse_vmstat(text), "parse_vmstat error without a message");
      break;
    case 3:
      check_error(policy::parse_zram_mm_stat(text), "parse_zram_mm_stat error without a message");
      break;
    case 4: {
      auto r = swap::parse_proc_swaps(text);
      check_error(r, "parse_proc_swaps error without a message");
      if (r)
        for (const auto& a : *r) FUZZ_CHECK(!a.path.empty(), "a swap area without a path");
      break;
    }
    case 5: {
      auto r = policy::parse_trace(text, "fuzz.jsonl");
      check_error(r, "parse_trace error without a message");
      if (r)
        for (std::size_t i = 1; i < r->size(); ++i)
          FUZZ_CHECK((*r)[i].time_ms >= (*r)[i - 1].time_ms, "trace time goes back");
      break;
    }
  }
  return 0;
}
