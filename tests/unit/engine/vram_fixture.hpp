// What the vram kind's tests share: a config with a zram tier "fast" and a
// vram tier "gpu" (64M, host store, two connections), and a plan of a config
// on a fake root as tierswapd makes it (load, observe, make_plan).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/loader.hpp"
#include "daemon/journal.hpp"
#include "daemon/observe.hpp"
#include "daemon/planner.hpp"
#include "fake_root.hpp"

namespace tierswap::test {

constexpr const char* kVramConfig =
    "tiers:\n"
    "  - name: fast\n"
    "    kind: zram\n"
    "    size: 1G\n"
    "    priority: 100\n"
    "  - name: gpu\n"
    "    kind: vram\n"
    "    size: 64M\n"
    "    store: host\n"
    "    connections: 2\n"
    "    priority: 50\n";

// On a 16 GiB machine without partitions.
inline config::LoadResult load_config(const std::string& yaml) {
  return config::load_string(yaml, "test.yaml", config::HostFacts{16ULL << 30, 0});
}

inline std::string dump(const std::vector<config::Diagnostic>& ds) {
  std::string out;
  for (const auto& d : ds) out += config::format_diagnostic(d) + "\n";
  return out;
}

// The plan of `yaml` on `root` with journal `j`.
inline PlanResult plan_on(const TempRoot& root, const std::string& yaml, const Journal& j = {}) {
  auto l = load_config(yaml);
  EXPECT_TRUE(l.spec) << dump(l.diagnostics);
  if (!l.spec) return {};
  const HostFs fs(root.str());
  auto obs = observe(fs);
  EXPECT_TRUE(obs);
  if (!obs) return {};
  return make_plan(*l.spec, *obs, j, fs);
}

}  // namespace tierswap::test
