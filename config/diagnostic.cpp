// format_diagnostic(): the one place that decides how a finding reads, so
// that `tierswapctl check`, tierswapd's log and the tests agree.
#include <fmt/format.h>

#include <string>

#include "config/loader.hpp"

namespace tierswap::config {

std::string format_diagnostic(const Diagnostic& d) {
  std::string out = d.loc.file.empty() ? std::string("<config>") : d.loc.file;
  if (d.loc.line > 0) out += fmt::format(":{}:{}", d.loc.line, d.loc.col);
  out += ": ";
  if (d.severity == Severity::warning) out += "warning: ";
  if (!d.path.empty()) out += d.path + ": ";
  out += d.message;
  if (!d.hint.empty()) out += " (" + d.hint + ")";
  return out;
}

}  // namespace tierswap::config
