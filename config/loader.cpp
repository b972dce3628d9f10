// load_*(): read the user's YAML (schema.cpp), lay it over the profile
// (profiles.cpp), then warn about weak combinations (checks.cpp). Any error
// anywhere means no Spec: nothing half-valid reaches the planner.
#include "config/loader.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/checks.hpp"
#include "config/profiles.hpp"
#include "config/schema.hpp"

namespace tierswap::config {

bool LoadResult::ok() const {
  for (const auto& d : diagnostics)
    if (d.severity == Severity::error) return false;
  return true;
}

LoadResult load_string(std::string_view yaml, std::string_view source_name, const HostFacts& host) {
  LoadResult result;
  Spec user = read_user_config(yaml, source_name, host, result.diagnostics);
  if (!result.ok()) return result;

  Spec spec = merge_over_profile(profile_recipe(user.profile, host, source_name), std::move(user));
  check_combinations(spec, host, result.diagnostics);
  if (result.ok()) result.spec = std::move(spec);
  return result;
}

LoadResult load_file(const std::filesystem::path& file, const HostFacts& host) {
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  std::error_code ec;
  // A directory opens fine and reads as nothing: say what it is instead.
  if (std::filesystem::is_directory(file, ec)) errno = EISDIR;
  if (!in || in.bad() || errno == EISDIR) {
    int err = errno;
    LoadResult result;
    result.diagnostics.push_back(
        Diagnostic{Severity::error, SourceLoc{file.string(), 0, 0}, "",
                   std::string("cannot read this file: ") + std::strerror(err ? err : EIO),
                   "check the path and its permissions"});
    return result;
  }
  return load_string(text.str(), file.string(), host);
}

}  // namespace tierswap::config
