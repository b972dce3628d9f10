#include "policy/meminfo.hpp"

#include <charconv>

namespace tierswap::policy {

Result<Meminfo> parse_meminfo(std::string_view text) {
  Meminfo m;
  int lineno = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    if (line.empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return fail(EINVAL, "/proc/meminfo:" + std::to_string(lineno) + ": expected \"Key: value\"");
    }
    const std::string key(line.substr(0, colon));
    std::string_view rest = line.substr(colon + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec != std::errc{}) {
      return fail(EINVAL, "/proc/meminfo:" + std::to_string(lineno) + ": " + key + ": \"" + std::string(rest) +
                              "\" is not a number");
    }
    std::string_view unit(ptr, rest.data() + rest.size() - ptr);
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (unit == "kB") v *= 1024;
    else if (!unit.empty()) {
      return fail(EINVAL, "/proc/meminfo:" + std::to_string(lineno) + ": " + key + ": unknown unit \"" +
                              std::string(unit) + "\"");
    }
    m.values[key] = v;
  }
  if (!m.get("MemTotal")) return fail(EINVAL, "/proc/meminfo: no MemTotal line");
  return m;
}

}  // namespace tierswap::policy
