#include "backends/swap/proc_swaps.hpp"

#include <charconv>
#include <sstream>

#include "backends/hostfs/paths.hpp"
#include "backends/hostfs/seq_escape.hpp"
#include "common/refusal.hpp"

namespace tierswap::swap {

namespace {

template <class T>
bool to_num(std::string_view s, T& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<std::vector<SwapArea>> parse_proc_swaps(std::string_view text) {
  std::vector<SwapArea> out;
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n == 1 && line.starts_with("Filename")) continue;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::istringstream ls(line);
    std::string path, type, size, used, prio;
    if (!(ls >> path >> type >> size >> used >> prio))
      return refusal(ErrorKind::protocol, EINVAL,
                     std::string(paths::proc_swaps) + " line " + std::to_string(n) + ": \"" + line +
                         "\" has fewer than 5 fields");
    SwapArea a;
    a.path = unescape_seq_path(path);
    a.type = type;
    if (!to_num(size, a.size_kib) || !to_num(used, a.used_kib) || !to_num(prio, a.priority))
      return refusal(ErrorKind::protocol, EINVAL,
                     std::string(paths::proc_swaps) + " line " + std::to_string(n) + ": \"" + line +
                         "\": size, used or priority is not a number");
    out.push_back(std::move(a));
  }
  return out;
}

std::optional<SwapArea> find_area(const std::vector<SwapArea>& areas, std::string_view path) {
  for (const auto& a : areas)
    if (a.path == path) return a;
  return std::nullopt;
}

}  // namespace tierswap::swap
