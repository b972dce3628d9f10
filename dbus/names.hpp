// Names of the D-Bus API (bus name, object paths, error names) and the
// checks on the arguments the API accepts. Shared by the adaptor and proxy
// sides. No sdbus-c++ types here.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/tier_name.hpp"
#include "dbus/status.hpp"

namespace tierswap {

// "drained" -> TierState::drained; nullopt for anything else.
std::optional<TierState> tier_state_from_string(std::string_view s);

}  // namespace tierswap

namespace tierswap::dbus {

inline constexpr const char* kBusName = "org.tierswap.Manager1";
inline constexpr const char* kManagerPath = "/org/tierswap/Manager1";
// org.freedesktop.DBus.ObjectManager (GetManagedObjects, InterfacesAdded/
// Removed) for the manager and every tier object below /org/tierswap.
inline constexpr const char* kObjectManagerPath = "/org/tierswap";
inline constexpr const char* kTierPathPrefix = "/org/tierswap/Tier/";
inline constexpr const char* kManagerInterface = "org.tierswap.Manager1";
inline constexpr const char* kTierInterface = "org.tierswap.Tier1";
inline constexpr const char* kPolkitAction = "org.tierswap.manage";

// Error names (documented in org.tierswap.Manager1.xml and tierswapctl(8)).
inline constexpr const char* kErrInvalidConfig = "org.tierswap.Error.InvalidConfig";
inline constexpr const char* kErrNoSuchTier = "org.tierswap.Error.NoSuchTier";
inline constexpr const char* kErrNotEnoughMemory = "org.tierswap.Error.NotEnoughMemory";
inline constexpr const char* kErrBusy = "org.tierswap.Error.Busy";
inline constexpr const char* kErrAccessDenied = "org.tierswap.Error.AccessDenied";
inline constexpr const char* kErrInvalidArgument = "org.tierswap.Error.InvalidArgument";
inline constexpr const char* kErrFailed = "org.tierswap.Error.Failed";

// The D-Bus error name for an error kind; never from an errno (a kernel
// error is Failed, whatever the kernel said):
//   invalid_config    -> InvalidConfig     invalid_argument  -> InvalidArgument
//   not_found         -> NoSuchTier        busy              -> Busy
//   not_enough_memory -> NotEnoughMemory   permission_denied -> AccessDenied
//   any other kind    -> Failed
const char* error_name_for(ErrorKind kind);
// The inverse, for clients: the kind an error name stands for (failed for
// Failed and for names that are not tierswap's).
ErrorKind error_kind_for_name(std::string_view name);

// Tier names as the config allows them (the rule lives in common/tier_name.hpp).
using tierswap::check_tier_name;

// "/org/tierswap/Tier/" + the name escaped as sd_bus_path_encode() does:
// every byte outside [A-Za-z0-9] becomes _XX (lowercase hex).
std::string tier_object_path(std::string_view name);

}  // namespace tierswap::dbus
