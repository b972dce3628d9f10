// load_*(): read the user's YAML (schema.cpp), lay it over the profile
// (profiles.cpp), then warn about weak combinations (checks.cpp). Any error
// anywhere means no Spec: nothing half-valid reaches the planner.
#include "config/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "config/checks.hpp"
#include "config/profiles.hpp"
#include "config/schema.hpp"

namespace tierswap::config {

bool LoadResult::ok() const {
  for (const auto& d : diagnostics)
    if (d.severity == Severity::error) return false;
  return true;
}

namespace {

LoadResult one_error(std::string_view source, std::string message, std::string hint) {
  LoadResult result;
  result.diagnostics.push_back(Diagnostic{Severity::error, SourceLoc{std::string(source), 0, 0}, "",
                                          std::move(message), std::move(hint)});
  return result;
}

}  // namespace

LoadResult load_string(std::string_view yaml, std::string_view source_name, const HostFacts& host) {
  if (yaml.size() > kMaxConfigBytes)
    return one_error(source_name,
                     "more than " + std::to_string(kMaxConfigBytes) + " bytes: too large for a config",
                     "a tierswap config is a few hundred bytes; check that this is the right file");
  // yaml-cpp takes a NUL byte among the first ones for UTF-16 or UTF-32 and
  // reads something else than the bytes (its positions then point nowhere):
  // a config is UTF-8 text, so refuse it here, naming where the byte is.
  if (const auto nul = yaml.find('\0'); nul != std::string_view::npos) {
    const auto line_start = yaml.rfind('\n', nul);
    const int line = 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + nul, '\n'));
    const int col = 1 + static_cast<int>(line_start == std::string_view::npos ? nul : nul - line_start - 1);
    LoadResult result;
    result.diagnostics.push_back(
        Diagnostic{Severity::error, SourceLoc{std::string(source_name), line, col}, "",
                   "a NUL byte at byte offset " + std::to_string(nul) + ": a config is UTF-8 text",
                   "this is not a text file, or it is UTF-16/UTF-32: save it as UTF-8"});
    return result;
  }
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
  // One byte past the cap is enough to know the file is too large; a
  // device or a pipe has no size to ask for, so read instead of stat.
  std::string text(kMaxConfigBytes + 1, '\0');
  if (in) {
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (in.eof()) in.clear();  // a short file sets failbit along with eofbit
  }
  std::error_code ec;
  // A directory opens fine and reads as nothing: say what it is instead.
  if (std::filesystem::is_directory(file, ec)) errno = EISDIR;
  if (!in || in.bad() || errno == EISDIR) {
    int err = errno;
    return one_error(file.string(), std::string("cannot read this file: ") + std::strerror(err ? err : EIO),
                     "check the path and its permissions");
  }
  return load_string(text, file.string(), host);
}

}  // namespace tierswap::config
