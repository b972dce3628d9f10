#include "backends/zswap/zswap.hpp"

#include <algorithm>
#include <sstream>

#include "backends/hostfs/paths.hpp"

namespace tierswap::zswap {

std::vector<std::string> parse_crypto_compressors(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  std::string line, name;
  auto value = [](const std::string& l) {
    auto p = l.find(':');
    if (p == std::string::npos) return std::string();
    auto v = l.substr(p + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    v.erase(v.find_last_not_of(" \t\r") + 1);
    return v;
  };
  while (std::getline(in, line)) {
    if (line.starts_with("name")) name = value(line);
    if (line.starts_with("type")) {
      const auto t = value(line);
      if ((t == "compression" || t == "scomp" || t == "acomp") && !name.empty()) out.push_back(name);
    }
    if (line.empty()) name.clear();
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

State observe(const HostFs& fs) {
  State s;
  s.present = fs.exists(paths::zswap_parameters);
  if (!s.present) return s;
  for (const auto& n : parameter_names())
    if (auto v = fs.read_value(paths::zswap_param(n)); v) s.params[n] = *v;
  if (auto c = fs.read(paths::proc_crypto); c) s.compressors = parse_crypto_compressors(*c);
  return s;
}

}  // namespace tierswap::zswap
