// The `cgroups:` name rule, owned here: the config loader checks names as the
// user writes them, the cgroup kind (backends/cgroup/) turns a checked name
// into its path below /sys/fs/cgroup, and both must agree.
//
// A name is one of:
//   a slice      "system.slice", "user-1000.slice": systemd's nesting by
//                dashes, "a-b.slice" -> "a.slice/a-b.slice";
//   a unit       "postgresql.service", "docker.socket", "init.scope": in
//                system.slice, where systemd puts system units by default;
//   a path       "user.slice/user-1000.slice/user@1000.service": relative
//                to /sys/fs/cgroup, for a unit in another slice.
// Each component is 1 to 255 of [A-Za-z0-9_.:@-\], not "." or "..", and
// does not start with "cgroup." (the kernel's own interface files). No
// leading or trailing "/", no empty component, at most 16 components.
// The root cgroup ("-.slice") has no memory.* limits and is refused.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace tierswap {

// The cgroup v2 files a `cgroups:` entry may set.
inline constexpr const char* kCgroupKeys[] = {"memory.high", "memory.max", "memory.swap.max",
                                              "memory.zswap.max"};

inline constexpr std::size_t kMaxCgroupComponent = 255;
inline constexpr std::size_t kMaxCgroupDepth = 16;

constexpr bool cgroup_name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || c == ':' || c == '@' || c == '\\';
}

// The path of a `cgroups:` name relative to /sys/fs/cgroup
// ("postgresql.service" -> "system.slice/postgresql.service"), or an
// EINVAL error that says what is wrong with it.
inline Result<std::string> cgroup_relative_path(std::string_view name) {
  const std::string allowed = "allowed: A-Z a-z 0-9 _ . : @ - \\ and / between components";
  if (name.empty()) return fail(EINVAL, "the name is empty (a slice, a unit or a path below /sys/fs/cgroup)");
  if (name.front() == '/' || name.back() == '/')
    return fail(EINVAL, "\"" + std::string(name) +
                            "\" starts or ends with \"/\" (write system.slice, not "
                            "/system.slice)");
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t end = std::min(name.find('/', start), name.size());
    parts.emplace_back(name.substr(start, end - start));
    start = end + 1;
  }
  if (parts.size() > kMaxCgroupDepth)
    return fail(EINVAL, "\"" + std::string(name) + "\" has more than " + std::to_string(kMaxCgroupDepth) +
                            " components");
  for (const auto& p : parts) {
    if (p.empty()) return fail(EINVAL, "\"" + std::string(name) + "\" has an empty component (\"//\")");
    if (p == "." || p == "..")
      return fail(EINVAL,
                  "\"" + std::string(name) + "\" has a \"" + p + "\" component; write the path as it is");
    if (p.size() > kMaxCgroupComponent)
      return fail(EINVAL,
                  "a component of the name is " + std::to_string(p.size()) + " bytes long (at most 255)");
    if (p.starts_with("cgroup."))
      return fail(EINVAL, "\"" + p + "\" is a cgroup interface file, not a cgroup");
    for (unsigned char c : p)
      if (!cgroup_name_char(c)) {
        const char hex[] = "0123456789abcdef";
        return fail(EINVAL, "\"" + std::string(name) + "\" has a character that is not allowed (0x" +
                                std::string{hex[c >> 4], hex[c & 15]} + "; " + allowed + ")");
      }
  }
  if (parts.size() > 1) return std::string(name);
  const std::string& n = parts.front();
  if (n == "-.slice") return fail(EINVAL, "the root cgroup (-.slice) has no memory limits to set");
  if (n.ends_with(".slice")) {
    // "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice".
    const std::string stem = n.substr(0, n.size() - 6);
    if (stem.empty() || stem.front() == '-' || stem.back() == '-' || stem.find("--") != std::string::npos)
      return fail(EINVAL, "\"" + n + "\" is not a slice name (dashes separate parent slices: a-b.slice)");
    std::string out;
    for (std::size_t i = 0; i <= stem.size(); ++i)
      if (i == stem.size() || stem[i] == '-') out += (out.empty() ? "" : "/") + stem.substr(0, i) + ".slice";
    return out;
  }
  const auto dot = n.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == n.size())
    return fail(EINVAL, "\"" + n + "\" is neither a slice (.slice) nor a unit (.service, .scope, ...)");
  return "system.slice/" + n;
}

}  // namespace tierswap
