// sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET ("READY=1",
// "STOPPING=1", "RELOADING=1", "STATUS=..."). Written here (20 lines) rather
// than linking libsystemd, so tierswapd has no systemd dependency on
// machines without it, and unit tests can read the datagrams from a socket
// of their own. Abstract sockets ("@name") are supported. Returns false when
// NOTIFY_SOCKET is unset or the send failed (never fatal).
#pragma once

#include <string_view>

namespace tierswap {
bool notify(std::string_view state);
}
