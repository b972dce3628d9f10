// The tier-name rule, owned here: the config loader checks names as the user
// writes them and the D-Bus layer checks names that callers send, and both
// must agree, because a tier's name becomes part of its D-Bus object path
// (/org/tierswap/Tier/NAME) and of the journal.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace tierswap {

inline constexpr std::size_t kMaxTierNameLength = 32;

// [A-Za-z0-9_-]: ASCII only, whatever the locale.
constexpr bool tier_name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Tier names are 1 to 32 of [A-Za-z0-9_-]. The error (invalid_argument) says what is
// wrong without echoing a huge argument back.
inline Result<void> check_tier_name(std::string_view name) {
  if (name.empty())
    return fail(ErrorKind::invalid_argument,
                "tier name is empty (expected 1 to 32 characters of A-Z a-z 0-9 _ -)");
  if (name.size() > kMaxTierNameLength)
    return fail(ErrorKind::invalid_argument, "tier name is " + std::to_string(name.size()) +
                                                 " bytes long (at most 32 characters of A-Z a-z 0-9 _ -)");
  for (std::size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = name[i];
    if (!tier_name_char(c)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", c);
      return fail(ErrorKind::invalid_argument, "tier name has a character that is not allowed (" +
                                                   std::string(buf) + " at position " +
                                                   std::to_string(i + 1) + "; allowed: A-Z a-z 0-9 _ -)");
    }
  }
  return {};
}

}  // namespace tierswap
