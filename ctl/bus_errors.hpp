// One place that turns a failed D-Bus call into tierswapctl's message and
// exit status (tierswapctl(8)): no bus / no daemon 3; denied 4 (the bus
// policy said no, or the daemon's error kind is permission_denied); else 1.
// The daemon's error kind comes from the error name (dbus::error_kind_for_name),
// never from an errno.
#pragma once

#include <string_view>

#include "dbus/client.hpp"

namespace tierswap::ctl {

// Prints "tierswapctl: <what>: <message> [<error name>]" to stderr and
// returns the exit status.
int report_call_error(std::string_view what, const dbus::CallError& e);

// Connects, or prints why not and sets *exit_code.
std::unique_ptr<dbus::BusClient> connect_or_report(int* exit_code);

}  // namespace tierswap::ctl
