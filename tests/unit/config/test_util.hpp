// Helpers shared by the config tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "config/loader.hpp"

namespace tierswap::config::test {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t GiB = 1024 * MiB;

inline HostFacts host(std::uint64_t ram = 16 * GiB, std::uint64_t vram = 0) {
  return HostFacts{ram, vram};
}

inline LoadResult load(std::string_view yaml, HostFacts h = host()) {
  return load_string(yaml, "test.yaml", h);
}

// All diagnostics, one per line, for failure messages.
inline std::string dump(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += format_diagnostic(d) + "\n";
  return out;
}

inline std::size_t count(const LoadResult& r, Severity s) {
  std::size_t n = 0;
  for (const auto& d : r.diagnostics) n += d.severity == s;
  return n;
}

// The only error of `r`; fails the test when there is not exactly one.
inline Diagnostic only_error(const LoadResult& r) {
  EXPECT_FALSE(r.spec.has_value());
  EXPECT_EQ(count(r, Severity::error), 1u) << dump(r);
  for (const auto& d : r.diagnostics)
    if (d.severity == Severity::error) return d;
  return {};
}

inline const Tier* find_tier(const Spec& s, std::string_view name) {
  for (const auto& t : s.tiers)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace tierswap::config::test
