#include "dbus/names.hpp"

#include <cstdio>

namespace tierswap::dbus {

namespace {

// One table for both directions, so that the daemon's names and the client's
// reading of them cannot drift apart. Kinds not listed are Failed.
struct KindName {
  ErrorKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {
    {ErrorKind::invalid_config, kErrInvalidConfig},
    {ErrorKind::invalid_argument, kErrInvalidArgument},
    {ErrorKind::not_found, kErrNoSuchTier},
    {ErrorKind::busy, kErrBusy},
    {ErrorKind::not_enough_memory, kErrNotEnoughMemory},
    {ErrorKind::permission_denied, kErrAccessDenied},
};

}  // namespace

const char* error_name_for(ErrorKind kind) {
  for (const auto& kn : kKindNames)
    if (kn.kind == kind) return kn.name;
  return kErrFailed;
}

ErrorKind error_kind_for_name(std::string_view name) {
  for (const auto& kn : kKindNames)
    if (name == kn.name) return kn.kind;
  return ErrorKind::failed;
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
