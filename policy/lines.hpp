// Line splitting shared by the parsers of the kernel's reports: text in,
// one call per non-empty line, the first error stops the walk.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace tierswap::policy {

// Calls fn(where, line) for each non-empty line of text, where `where` is
// "SOURCE:LINE" (1-based) for messages. fn returns Result<void>.
template <class Fn>
Result<void> for_each_line(std::string_view text, std::string_view source, Fn&& fn) {
  int lineno = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    if (line.empty()) continue;
    if (auto r = fn(std::string(source) + ":" + std::to_string(lineno), line); !r) return r;
  }
  return {};
}

// A report parsed into a T: fn(where, line, T&) for each non-empty line,
// as for_each_line(); the T, or the first error.
template <class T, class Fn>
Result<T> parse_lines(std::string_view text, std::string_view source, Fn&& fn) {
  T out;
  auto walked = for_each_line(
      text, source, [&](const std::string& where, std::string_view line) { return fn(where, line, out); });
  if (!walked) return std::unexpected(walked.error());
  return out;
}

}  // namespace tierswap::policy
