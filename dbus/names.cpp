#include "dbus/names.hpp"

#include <cerrno>
#include <cstdio>

namespace tierswap::dbus {

const char* error_name_for(int code) {
  switch (code) {
    case EINVAL:
      return kErrInvalidConfig;
    case ENOENT:
      return kErrNoSuchTier;
    case ENOMEM:
      return kErrNotEnoughMemory;
    case EBUSY:
      return kErrBusy;
    case EPERM:
    case EACCES:
      return kErrAccessDenied;
    default:
      return kErrFailed;
  }
}

namespace {
bool alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

Result<void> check_tier_name(std::string_view name) {
  constexpr std::size_t kMax = 32;
  if (name.empty())
    return fail(EINVAL, "tier name is empty (expected 1 to 32 characters of A-Z a-z 0-9 _ -)");
  if (name.size() > kMax) {
    return fail(EINVAL, "tier name is " + std::to_string(name.size()) +
                            " bytes long (at most 32 characters of A-Z a-z 0-9 _ -)");
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = name[i];
    if (!alnum(c) && c != '_' && c != '-') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", c);
      return fail(EINVAL, "tier name has a character that is not allowed (" + std::string(buf) +
                              " at position " + std::to_string(i + 1) + "; allowed: A-Z a-z 0-9 _ -)");
    }
  }
  return {};
}

std::string tier_object_path(std::string_view name) {
  std::string p = kTierPathPrefix;
  if (name.empty()) return p + "_";  // sd_bus_path_encode's spelling of ""
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : name) {
    if (alnum(c)) {
      p += static_cast<char>(c);
    } else {
      p += '_';
      p += hex[c >> 4];
      p += hex[c & 15];
    }
  }
  return p;
}

}  // namespace tierswap::dbus
