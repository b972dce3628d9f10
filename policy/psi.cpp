#include "policy/psi.hpp"

#include <charconv>
#include <cstdlib>
#include <string>

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
    if (eq == std::string_view::npos) return fail(EINVAL, std::string(where) + ": \"" + std::string(tok) + "\" is not key=value");
    const std::string_view k = tok.substr(0, eq), v = tok.substr(eq + 1);
    bool ok = true;
    if (k == "avg10") ok = parse_double(v, l.avg10), seen[0] = true;
    else if (k == "avg60") ok = parse_double(v, l.avg60), seen[1] = true;
    else if (k == "avg300") ok = parse_double(v, l.avg300), seen[2] = true;
    else if (k == "total") {
      ok = std::from_chars(v.data(), v.data() + v.size(), l.total_us).ec == std::errc{};
      seen[3] = true;
    }
    if (!ok) return fail(EINVAL, std::string(where) + ": " + std::string(k) + "=\"" + std::string(v) + "\" is not a number");
  }
  for (bool s : seen)
    if (!s) return fail(EINVAL, std::string(where) + ": expected avg10, avg60, avg300 and total");
  return {};
}

}  // namespace

Result<Psi> parse_psi(std::string_view text, std::string_view source) {
  Psi p;
  bool have_some = false;
  int lineno = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    if (line.empty()) continue;
    const std::string where = std::string(source) + ":" + std::to_string(lineno);
    if (line.rfind("some ", 0) == 0) {
      if (auto r = parse_fields(line.substr(5), p.some, where); !r) return std::unexpected(r.error());
      have_some = true;
    } else if (line.rfind("full ", 0) == 0) {
      if (auto r = parse_fields(line.substr(5), p.full, where); !r) return std::unexpected(r.error());
      p.has_full = true;
    } else {
      return fail(EINVAL, where + ": expected a \"some\" or \"full\" line");
    }
  }
  if (!have_some) return fail(EINVAL, std::string(source) + ": no \"some\" line");
  return p;
}

}  // namespace tierswap::policy
