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

// A TCP address to listen on.
struct ListenAddress {
  bool ipv6 = false;
  bool loopback = true;  // 127.0.0.0/8 or ::1
  std::string host;      // "127.0.0.1", "::1", "0.0.0.0" (numeric, as inet_pton reads it)
  std::uint16_t port = 0;
};

// "127.0.0.1:9109", "127.1.2.3:9109", "[::1]:9109", "localhost:9109"
// (= 127.0.0.1), "9109" (a bare port = 127.0.0.1): loopback, the normal case. A numeric address that is not
// loopback ("0.0.0.0:9466", "[::]:9466", "10.0.0.5:9466") is taken too, with
// `loopback` false: it must be written out in the config (no name is looked
// up, nothing listens beyond loopback by default), the schema warns about it
// and the daemon says so in its log, because the endpoint has no
// authentication. Its use is a pod's own network namespace (Kubernetes),
// where a ServiceMonitor scrapes the pod's address. Port 1..65535. Errors:
// EINVAL naming the text.
Result<ListenAddress> parse_listen_address(std::string_view text);

// Why `path` cannot be the textfile (nullopt: it can): it must be absolute,
// without "." or ".." components, and end in ".prom" (node_exporter's
// textfile collector reads only those). The directory itself is checked by
// the daemon when it writes (root-owned, not writable by others, no links
// on the way not owned by root).
std::optional<std::string> check_textfile_path(std::string_view path);

}  // namespace tierswap::config
