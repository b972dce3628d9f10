// Loading a tierswap config: YAML text -> validated Spec, or every problem
// found (not only the first) as Diagnostics with file:line:col.
//
// What the loader checks: YAML syntax, the schema (unknown keys with a
// "did you mean" hint, types, ranges, required keys, keys that belong to
// another tier kind), size expressions, unique tier names, profile names;
// it expands `profile:` and warns about combinations that work badly
// (zswap + zram, a profile that wants a disk tier without one).
// What it does not check: anything that needs the machine (algorithms the
// kernel offers, directories, free space, partitions). The planner does, at
// the SourceLocs recorded in Spec (Tier::locs, Zswap::locs, Spec::sysctl_locs).
//
// Nothing here reads kernel files: the caller measures RAM and passes it in
// HostFacts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "config/spec.hpp"

namespace tierswap::config {

struct LoadResult {
  std::optional<Spec> spec;             // set only when there is no error
  std::vector<Diagnostic> diagnostics;  // errors and warnings, in file order
  // True when no diagnostic is an error (warnings allowed).
  bool ok() const;
};

// The largest config text the loader reads. A config is a few hundred
// bytes; the cap keeps a wrong path (a disk image, /dev/zero) from being
// read into memory whole and parsed. Larger text gets one error, line 0.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;  // 1 MiB

// Reads `file` and loads it; diagnostics name the file as given. A file that
// cannot be read, or holds more than kMaxConfigBytes, yields one error
// diagnostic (line 0) and no spec; no more than kMaxConfigBytes + 1 bytes
// are read.
LoadResult load_file(const std::filesystem::path& file, const HostFacts& host);

// Loads YAML text (at most kMaxConfigBytes); `source_name` is what diagnostics and Spec::source name
// ("/etc/tierswap.yaml", "<embedded default>"). Text with a NUL byte is not
// UTF-8 YAML: one error at the byte's line and column, naming its offset.
LoadResult load_string(std::string_view yaml, std::string_view source_name, const HostFacts& host);

// The name Spec::source carries for the embedded default.
inline constexpr std::string_view kEmbeddedDefaultName = "<embedded default>";

// The built-in config that tierswapd uses when /etc/tierswap.yaml does not
// exist: the desktop recipe written out as explicit YAML (zram of
// min(ram / 2, 8G), algorithms zstd > lz4 > lzo-rle > lzo, priority 100,
// vm.swappiness 150, vm.page-cluster 0).
std::string_view embedded_default_yaml();

// "FILE:LINE:COL: key.path: message (hint)". Warnings read
// "FILE:LINE:COL: warning: key.path: message (hint)". Without a line (values
// from a profile, unreadable file) the location is just "FILE"; an empty
// path or hint is left out with its separator.
std::string format_diagnostic(const Diagnostic& d);

// Evaluates a size expression (grammar in config/size_expr.hpp) against
// `host`: bytes, floored to a whole byte, not page-rounded. Errors (invalid_config)
// read like the loader's: "\"12X\" is not a size (try 8G, 50%, min(ram / 2, 8G))",
// "size must be greater than zero (\"0\") (...)"; an expression over vram
// fails when host.vram_bytes is 0.
Result<std::uint64_t> parse_size(std::string_view expr, const HostFacts& host);

}  // namespace tierswap::config
