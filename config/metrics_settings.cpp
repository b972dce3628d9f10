#include "config/metrics_settings.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace tierswap::config {

Result<ListenAddress> parse_listen_address(std::string_view text) {
  const std::string shown = "\"" + std::string(text.substr(0, 80)) + "\"";
  ListenAddress a;
  std::string_view host, port;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
    host = "127.0.0.1";  // a bare port: loopback
    port = text;
  } else if (text.starts_with("[")) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return fail(EINVAL, shown + " is not HOST:PORT (an IPv6 address is written [::1]:9109)");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    a.ipv6 = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon)
      return fail(EINVAL, shown + " is not HOST:PORT (e.g. 127.0.0.1:9109)");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
    return fail(EINVAL, shown + ": \"" + std::string(port.substr(0, 16)) + "\" is not a port (1..65535)");
  a.port = static_cast<std::uint16_t>(p);
  a.host = host == "localhost" ? std::string("127.0.0.1") : std::string(host);
  if (a.ipv6) {
    in6_addr addr{};
    if (::inet_pton(AF_INET6, a.host.c_str(), &addr) != 1)
      return fail(EINVAL, shown + ": \"" + a.host + "\" is not an IPv6 address");
    a.loopback = IN6_IS_ADDR_LOOPBACK(&addr);
    return a;
  }
  in_addr addr{};
  if (::inet_pton(AF_INET, a.host.c_str(), &addr) != 1)
    return fail(EINVAL, shown + ": \"" + a.host +
                            "\" is not an IPv4 address (names other than localhost "
                            "are not looked up)");
  a.loopback = (ntohl(addr.s_addr) >> 24) == 127;
  return a;
}

std::optional<std::string> check_textfile_path(std::string_view path) {
  const std::string p(path);
  if (!p.starts_with("/")) return "\"" + p + "\" is not an absolute path";
  if (!p.ends_with(".prom")) return "\"" + p + "\" does not end in .prom (node_exporter reads only *.prom)";
  std::size_t start = 1;
  while (start <= p.size()) {
    const auto end = std::min(p.find('/', start), p.size());
    const auto part = p.substr(start, end - start);
    if (part == "." || part == ".." || part.empty())
      return "\"" + p + "\" has a \"" + part + "\" component; write the path as it is";
    start = end + 1;
  }
  if (p.size() > 4096) return "the path is longer than 4096 bytes";
  return std::nullopt;
}

}  // namespace tierswap::config
