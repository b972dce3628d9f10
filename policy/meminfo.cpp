#include "policy/meminfo.hpp"

#include <charconv>

#include "backends/hostfs/paths.hpp"
#include "policy/lines.hpp"

namespace tierswap::policy {

Result<Meminfo> parse_meminfo(std::string_view text) {
  auto m = parse_lines<Meminfo>(
      text, paths::proc_meminfo,
      [](const std::string& where, std::string_view line, Meminfo& m) -> Result<void> {
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
          return fail(EINVAL, where + ": expected \"Key: value\"");
        const std::string key(line.substr(0, colon));
        std::string_view rest = line.substr(colon + 1);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        std::uint64_t v = 0;
        auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
        if (ec != std::errc{})
          return fail(EINVAL, where + ": " + key + ": \"" + std::string(rest) + "\" is not a number");
        std::string_view unit(ptr, rest.data() + rest.size() - ptr);
        while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
        if (unit == "kB")
          v *= 1024;
        else if (!unit.empty())
          return fail(EINVAL, where + ": " + key + ": unknown unit \"" + std::string(unit) + "\"");
        m.values[key] = v;
        return {};
      });
  if (m && !m->get("MemTotal")) return fail(EINVAL, std::string(paths::proc_meminfo) + ": no MemTotal line");
  return m;
}

}  // namespace tierswap::policy
