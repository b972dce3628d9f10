// Fuzz target: the journal reader (daemon/journal.hpp): parse_journal(),
// validate_journal() and to_json(). The journal is not trusted: teardown
// writes to the paths it names, so whatever parses must either fail
// validation or name only what tierswapd itself produces.
//
// Asserted beyond "no sanitizer report / no uncaught exception":
//  - an error has a message;
//  - a parsed journal written back by to_json() parses again, to the same
//    text (to_json . parse_journal is a fixed point after one round);
//  - a journal that validates, read or written back, names only: values under /proc/sys/vm/ or
//    /sys/module/zswap/parameters/ without "/.."; tier devices empty,
//    zram<N> or nbd<N>; swap paths absolute, without "/../" or "/./"
//    components, never under /proc or /sys.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/journal.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tierswap;

namespace {

bool device_name_ok(std::string_view d) {
  if (d.empty()) return true;
  std::string_view digits;
  if (d.starts_with("zram"))
    digits = d.substr(4);
  else if (d.starts_with("nbd"))
    digits = d.substr(3);
  else
    return false;
  if (digits.empty()) return false;
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  return true;
}

bool has_dot_component(std::string_view p) {
  const std::string s = std::string(p) + "/";
  return s.find("/../") != std::string::npos || s.find("/./") != std::string::npos ||
         s.find("//") != std::string::npos;
}

void check_valid(const Journal& j) {
  for (const ValueRecord& v : j.values) {
    FUZZ_CHECK(v.path.starts_with("/proc/sys/vm/") || v.path.starts_with("/sys/module/zswap/parameters/"),
               "a valid journal names a value path tierswapd never writes");
    FUZZ_CHECK(v.path.find("..") == std::string::npos, "a valid journal names a value path with ..");
  }
  for (const OwnedTier& t : j.tiers) {
    FUZZ_CHECK(device_name_ok(t.device), "a valid journal names a device tierswapd never creates");
    FUZZ_CHECK(t.swap_path.starts_with("/"), "a valid journal has a relative swap path");
    FUZZ_CHECK(!has_dot_component(t.swap_path), "a valid journal has a swap path with . or .. components");
    FUZZ_CHECK(!t.swap_path.starts_with("/proc/") && !t.swap_path.starts_with("/sys/"),
               "a valid journal has a swap path under /proc or /sys");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto j = parse_journal(text);
  if (!j) {
    FUZZ_CHECK(!j.error().message.empty(), "parse_journal error without a message");
    return 0;
  }
  const auto valid = validate_journal(*j);
  if (!valid)
    FUZZ_CHECK(!valid.error().message.empty(), "validate_journal error without a message");
  else
    check_valid(*j);

  const std::string once = to_json(*j);
  auto again = parse_journal(once);
  FUZZ_CHECK(again.has_value(), "to_json() wrote a journal that parse_journal() refuses");
  FUZZ_CHECK(to_json(*again) == once, "journal text changes on a second round trip");
  // Writing back never changes whether a journal validates (corpus seed
  // regression-exporter-start-without-pid: an exporter_start without an
  // exporter_pid was once dropped by to_json, turning it valid).
  const auto valid_again = validate_journal(*again);
  FUZZ_CHECK(valid_again.has_value() == valid.has_value(), "a journal's validity changes when written back");
  if (valid_again) check_valid(*again);
  return 0;
}
