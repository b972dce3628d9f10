// The rules of `metrics:` (config/spec.hpp's MetricsSettings), owned here:
// the schema checks them as the user writes them and the daemon binds and
// writes by them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace tierswap::config {

// A loopback TCP address to listen on.
struct ListenAddress {
  bool ipv6 = false;
  std::string host;  // "127.0.0.1", "::1" (numeric, as inet_pton reads it)
  std::uint16_t port = 0;
};

// "127.0.0.1:9109", "127.1.2.3:9109", "[::1]:9109", "localhost:9109"
// (= 127.0.0.1). Anything that is not a loopback address is refused
// (EINVAL, naming it): the endpoint has no authentication, and the machine's
// memory picture is nobody else's business; node_exporter or a proxy
// publishes it. Port 1..65535.
Result<ListenAddress> parse_listen_address(std::string_view text);

// Why `path` cannot be the textfile (nullopt: it can): it must be absolute,
// without "." or ".." components, and end in ".prom" (node_exporter's
// textfile collector reads only those). The directory itself is checked by
// the daemon when it writes (root-owned, not writable by others, no links
// on the way not owned by root).
std::optional<std::string> check_textfile_path(std::string_view path);

}  // namespace tierswap::config
