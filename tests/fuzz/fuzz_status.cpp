// Fuzz target: the status document reader (dbus/status_json.hpp), which
// tierswapctl runs on whatever the bus hands it.
//
// Asserted beyond "no sanitizer report / no uncaught exception":
//  - an error has a message;
//  - a document that reads is written back (one line and pretty) as text
//    that reads again, and from then on the text is a fixed point:
//    status_to_json(status_from_json(t)) == t for t = status_to_json(s).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dbus/status_json.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tierswap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto s = dbus::status_from_json(text);
  if (!s) {
    FUZZ_CHECK(!s.error().message.empty(), "status_from_json error without a message");
    return 0;
  }
  for (bool pretty : {false, true}) {
    const std::string once = dbus::status_to_json(*s, pretty);
    auto again = dbus::status_from_json(once);
    FUZZ_CHECK(again.has_value(), "status_to_json() wrote a document that status_from_json() refuses");
    FUZZ_CHECK(dbus::status_to_json(*again, pretty) == once, "status text changes on a second round trip");
  }
  return 0;
}
