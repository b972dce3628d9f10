#include "backends/sysctl/sysctl.hpp"

#include "backends/hostfs/paths.hpp"

namespace tierswap::sysctl {

std::map<std::string, std::string> observe(const HostFs& fs) {
  std::map<std::string, std::string> out;
  for (const auto& k : managed_keys())
    if (auto v = fs.read_value(paths::sysctl(k)); v) out[k] = *v;
  return out;
}

}  // namespace tierswap::sysctl
