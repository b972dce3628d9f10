// What the vram kind's tests share: a config with a zram tier "fast" and a
// vram tier "gpu" (64M, host store, two connections), and a plan of a config
// on a fake root as tierswapd makes it (load, observe, make_plan).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
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

// The "gpu" tier's size in kVramConfig.
constexpr std::uint64_t kGpuTierBytes = 64ULL << 20;

// Tier "gpu" as the journal records it once an earlier tierswapd set it up:
// /dev/nbd0, served by exporter pid 4242 started at 777, backend
// "tierswap-gpu".
inline OwnedTier journaled_gpu_tier() {
  OwnedTier t;
  t.name = "gpu";
  t.kind = "vram";
  t.device = "nbd0";
  t.swap_path = "/dev/nbd0";
  t.active = true;
  t.priority = 50;
  t.size = kGpuTierBytes;
  t.store = "host";
  t.exporter_pid = 4242;
  t.exporter_start = 777;
  t.backend = "tierswap-gpu";
  return t;
}

// A "comm" process `pid` started at `start` (clock ticks), as
// /proc/PID/stat shows it.
inline void fake_process(const TempRoot& root, const std::string& comm, std::uint64_t start, int pid = 4242) {
  spit(root.path() / ("proc/" + std::to_string(pid) + "/stat"),
       std::to_string(pid) + " (" + comm + ") S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 3 0 " +
           std::to_string(start) + " 1000 200\n");
}

// What the kernel shows of journaled_gpu_tier() on `root`: the nbd driver,
// its exporter running, /dev/nbd0 connected with the tier's size and
// backend, and a swap area holding pages.
inline void attach_gpu_tier(const TempRoot& root) {
  const std::filesystem::path r = root.path();
  std::filesystem::create_directories(r / "sys/module/nbd");
  fake_process(root, "tierswap-nbd", 777);
  spit(r / "sys/block/nbd0/pid", "1234\n");
  spit(r / "sys/block/nbd0/size", std::to_string(kGpuTierBytes / 512) + "\n");
  spit(r / "sys/block/nbd0/backend", "tierswap-gpu\n");
  spit(r / "dev/nbd0", "");
  spit(r / "proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/nbd0\tpartition\t65532\t30000\t50\n");
}

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
