// The kernel's seq_file escaping of path names in /proc/swaps and
// /proc/self/mounts: " \t\n\\" appear as "\ooo" (octal), e.g. "\040".
#pragma once

#include <string>
#include <string_view>

namespace tierswap {

// "/mnt/my\040disk" -> "/mnt/my disk". Anything that is not a backslash and
// three octal digits is kept as it is.
inline std::string unescape_seq_path(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const auto o = s.substr(i + 1, 3);
      if (o.find_first_not_of("01234567") == std::string_view::npos) {
        out += static_cast<char>((o[0] - '0') * 64 + (o[1] - '0') * 8 + (o[2] - '0'));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace tierswap
