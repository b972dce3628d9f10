#include "policy/psi.hpp"

#include <charconv>
#include <cstdlib>
#include <string>

#include "policy/lines.hpp"

namespace tierswap::policy {

namespace {

bool parse_double(std::string_view s, double& out) {
  std::string tmp(s);
  char* end = nullptr;
  out = std::strtod(tmp.c_str(), &end);
  return end != tmp.c_str() && *end == '\0';
}

Result<void> parse_fields(std::string_view rest, PsiLine& l, std::string_view where) {
  bool seen[4] = {};
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) break;
    const auto sp = rest.find(' ');
    const std::string_view tok = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
    const auto eq = tok.find('=');
    if (eq == std::string_view::npos)
      return fail(EINVAL, std::string(where) + ": \"" + std::string(tok) + "\" is not key=value");
    const std::string_view k = tok.substr(0, eq), v = tok.substr(eq + 1);
    bool ok = true;
    if (k == "avg10")
      ok = parse_double(v, l.avg10), seen[0] = true;
    else if (k == "avg60")
      ok = parse_double(v, l.avg60), seen[1] = true;
    else if (k == "avg300")
      ok = parse_double(v, l.avg300), seen[2] = true;
    else if (k == "total") {
      ok = std::from_chars(v.data(), v.data() + v.size(), l.total_us).ec == std::errc{};
      seen[3] = true;
    }
    if (!ok)
      return fail(EINVAL,
                  std::string(where) + ": " + std::string(k) + "=\"" + std::string(v) + "\" is not a number");
  }
  for (bool s : seen)
    if (!s) return fail(EINVAL, std::string(where) + ": expected avg10, avg60, avg300 and total");
  return {};
}

}  // namespace

Result<Psi> parse_psi(std::string_view text, std::string_view source) {
  Psi p;
  bool have_some = false;
  auto walked =
      for_each_line(text, source, [&](const std::string& where, std::string_view line) -> Result<void> {
        if (line.starts_with("some ")) {
          have_some = true;
          return parse_fields(line.substr(5), p.some, where);
        }
        if (line.starts_with("full ")) {
          p.has_full = true;
          return parse_fields(line.substr(5), p.full, where);
        }
        return fail(EINVAL, where + ": expected a \"some\" or \"full\" line");
      });
  if (!walked) return std::unexpected(walked.error());
  if (!have_some) return fail(EINVAL, std::string(source) + ": no \"some\" line");
  return p;
}

}  // namespace tierswap::policy
