// Fuzz target: the config loader (config/loader.hpp), YAML text in, Spec or
// diagnostics out, and parse_size() on single-line inputs.
//
// libFuzzer (clang, coverage-guided) where clang is installed, else g++
// with the standalone driver: see CMakeLists.txt.
//
// Each input is loaded against two machines: 16 GiB of RAM and no known GPU
// (vram sizes stay unresolved), and 64 GiB with a 24 GiB GPU.
//
// Asserted beyond "no sanitizer report / no uncaught exception":
//  - every diagnostic names the source, has a non-empty path or message, a
//    line within the input's line count (0 only without a column), and a
//    column within its line (as yaml-cpp counts: see check_diagnostic);
//    format_diagnostic() starts with the source;
//  - a spec comes back exactly when no diagnostic is an error;
//  - a loaded spec has tiers with valid, unique names; sizes > 0 and whole
//    pages, except partitions (always 0) and vram tiers sized from VRAM on
//    a machine whose VRAM is unknown (0, and parse_size() says so); each
//    size agrees with parse_size() of its text;
//    priorities, sysctls and zswap percentages are within their ranges;
//  - parse_size() either gives 1 byte .. 2^62 or an invalid_config error with a message.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.hpp"
#include "config/schema.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace cfg = tierswap::config;

namespace {

constexpr std::string_view kSource = "fuzz.yaml";
constexpr std::uint64_t kGiB = 1ULL << 30;
constexpr std::uint64_t kPage = 4096;

std::vector<std::size_t> line_lengths(std::string_view text) {
  std::vector<std::size_t> lens;
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lens.push_back(text.size() - start);
      return lens;
    }
    lens.push_back(nl - start);
    start = nl + 1;
  }
}

void check_diagnostic(const cfg::Diagnostic& d, const std::vector<std::size_t>& lines) {
  FUZZ_CHECK(d.loc.file == kSource, "diagnostic names another file");
  FUZZ_CHECK(!d.path.empty() || !d.message.empty(), "diagnostic with neither path nor message");
  FUZZ_CHECK(d.loc.line >= 0 && static_cast<std::size_t>(d.loc.line) <= lines.size(),
             "diagnostic line past the end of the input");
  FUZZ_CHECK(d.loc.col >= 0, "negative diagnostic column");
  if (d.loc.line == 0) {
    FUZZ_CHECK(d.loc.col == 0, "diagnostic with a column but no line");
  } else {
    // yaml-cpp counts columns in its UTF-8 re-encoding of the input: an
    // invalid byte becomes U+FFFD (3 bytes), UTF-16 text (a BOM, no NUL
    // byte) up to 1.5 times longer. Hence 3 bytes of column per input byte
    // at most. Text with a NUL byte, which yaml-cpp would read as UTF-16 or
    // UTF-32 with positions that are not the bytes' (corpus seed
    // regression-nul-reads-as-utf16), never reaches it.
    FUZZ_CHECK(static_cast<std::size_t>(d.loc.col) <= 3 * lines[d.loc.line - 1] + 1,
               "diagnostic column past the end of its line");
  }
  FUZZ_CHECK(cfg::format_diagnostic(d).starts_with(kSource),
             "formatted diagnostic does not start with the file");
}

void check_spec(const cfg::Spec& spec, const cfg::HostFacts& host) {
  std::set<std::string> names;
  for (const cfg::Tier& t : spec.tiers) {
    FUZZ_CHECK(cfg::valid_tier_name(t.name), "loaded tier has an invalid name");
    FUZZ_CHECK(names.insert(t.name).second, "loaded spec has two tiers of one name");
    FUZZ_CHECK(t.priority >= -1 && t.priority <= 32767, "tier priority out of range");
    if (t.kind == cfg::TierKind::partition) {
      FUZZ_CHECK(t.size_bytes == 0, "partition tier with a size");
      continue;
    }
    // A vram tier whose size uses vram stays 0 until the GPU is known; one
    // sized from RAM or in bytes ("min(ram / 2, 8G)") resolves like any.
    if (t.kind == cfg::TierKind::vram && host.vram_bytes == 0 && t.size_bytes == 0) {
      auto again = cfg::parse_size(t.size_text, host);
      FUZZ_CHECK(!again && again.error().message.find("VRAM size") != std::string::npos,
                 "vram tier left unresolved although its size does not depend on VRAM");
      continue;
    }
    FUZZ_CHECK(t.size_bytes > 0, "loaded tier of size 0");
    FUZZ_CHECK(t.size_bytes % kPage == 0, "tier size is not whole pages");
    if (!t.size_text.empty()) {
      auto again = cfg::parse_size(t.size_text, host);
      FUZZ_CHECK(again.has_value(), "parse_size refuses a size the loader accepted");
      FUZZ_CHECK(*again / kPage * kPage == t.size_bytes, "parse_size and the loader disagree on a size");
    }
    if (t.mem_limit_bytes) FUZZ_CHECK(*t.mem_limit_bytes > 0, "zram mem_limit of 0");
  }
  for (const auto& [key, value] : spec.sysctl) {
    const auto& rules = cfg::sysctl_rules();
    auto rule =
        std::find_if(rules.begin(), rules.end(), [&](const cfg::SysctlRule& r) { return key == r.key; });
    FUZZ_CHECK(rule != rules.end(), "loaded spec sets a sysctl the schema does not allow");
    FUZZ_CHECK(value >= rule->min && value <= rule->max, "sysctl value out of range");
  }
  if (spec.zswap.max_pool_percent)
    FUZZ_CHECK(*spec.zswap.max_pool_percent >= 1 && *spec.zswap.max_pool_percent <= 100,
               "zswap.max_pool_percent out of range");
  if (spec.zswap.accept_threshold_percent)
    FUZZ_CHECK(*spec.zswap.accept_threshold_percent >= 0 && *spec.zswap.accept_threshold_percent <= 100,
               "zswap.accept_threshold_percent out of range");
  FUZZ_CHECK(spec.zswap.compressor.has_value() == !spec.zswap.compressors.empty(),
             "zswap.compressor and compressors disagree");
}

void check_parse_size(std::string_view expr, const cfg::HostFacts& host) {
  auto r = cfg::parse_size(expr, host);
  if (r) {
    FUZZ_CHECK(*r > 0 && *r <= (1ULL << 62), "parse_size result out of 1..2^62");
  } else {
    FUZZ_CHECK(r.error().kind == tierswap::ErrorKind::invalid_config,
               "parse_size error that is not invalid_config");
    FUZZ_CHECK(!r.error().message.empty(), "parse_size error without a message");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<std::size_t> lines = line_lengths(text);
  const cfg::HostFacts hosts[] = {{16 * kGiB, 0}, {64 * kGiB, 24 * kGiB}};
  for (const cfg::HostFacts& host : hosts) {
    const cfg::LoadResult r = cfg::load_string(text, kSource, host);
    for (const cfg::Diagnostic& d : r.diagnostics) check_diagnostic(d, lines);
    if (const auto nul = text.find('\0'); nul != std::string_view::npos && size <= cfg::kMaxConfigBytes) {
      FUZZ_CHECK(r.diagnostics.size() == 1 && r.diagnostics[0].message.starts_with(
                                                  "a NUL byte at byte offset " + std::to_string(nul) + ":"),
                 "text with a NUL byte not refused as such, naming its offset");
    }
    FUZZ_CHECK(r.spec.has_value() == r.ok(),
               "spec present although an error was reported, or missing without one");
    if (r.spec) check_spec(*r.spec, host);
    if (size < 256 && text.find('\n') == std::string_view::npos) check_parse_size(text, host);
  }
  return 0;
}
