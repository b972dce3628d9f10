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
