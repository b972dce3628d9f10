// JSON for tierswap's documents (`status --json`, `plan --json`, the journal)
// through nlohmann-json. `Json` keeps keys in insertion order, so documents
// are stable for golden tests and diffs.
//
//   Json doc = {{"format", 1}, {"tiers", Json::array()}};
//   std::string text = dump_json(doc, true);
//   auto back = parse_json(text, "status document");  // Result<Json>
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace tierswap {

using Json = nlohmann::ordered_json;

// pretty: two-space indented with a final newline (for people and files);
// else one line without one (for the bus). Bytes that are not UTF-8 (a path
// can hold any) become U+FFFD instead of throwing; NaN and infinities are null.
inline std::string dump_json(const Json& j, bool pretty) {
  std::string out = j.dump(pretty ? 2 : -1, ' ', false, Json::error_handler_t::replace);
  if (pretty) out += '\n';
  return out;
}

// Parses `text`; a syntax error is a protocol error naming `what` and where
// the parser stopped.
inline Result<Json> parse_json(std::string_view text, const std::string& what) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return fail(ErrorKind::protocol, what + " is not valid JSON: " + e.what());
  }
}

}  // namespace tierswap
