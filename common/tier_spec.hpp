// What the config asks of each tier kind, in the plug-ins' terms.
//
// The daemon adapts config::Spec (config/spec.hpp) to these structs, so that
// backends/ never include config/. TierSpec is one kind-neutral record per
// tier: the fields every swap tier has, plus the union of the per-kind keys
// (a kind reads its own and ignores the rest). SystemSpec holds the
// machine-wide sections (zswap, sysctl, cgroups). A new kind that needs a new key adds
// it here and in config/, and the adapter copies it (daemon/planner.cpp).
// No source locations here: a plug-in names the key, the daemon finds where
// it was written.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tierswap {

// The card a vram tier's `gpu:` names, as the daemon read it (NVML) while
// planning: what the tier's size must fit into.
struct GpuCard {
  unsigned index = 0;  // NVML's (nvidia-smi's)
  std::string name;    // "NVIDIA H200"
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
  // What this tier's own running exporter holds on the card (its store and
  // CUDA context, as NVML counts the process), when one runs there: a
  // re-plan does not count the tier's allocation against itself.
  std::uint64_t own_bytes = 0;
};

struct TierSpec {
  std::string name;
  std::string kind;  // as configured: "zram", "file", "partition", "vram"
  int priority = 0;  // -1 lets the kernel choose
  bool discard = false;
  std::uint64_t size_bytes = 0;  // resolved; 0 for a partition or an unresolved vram size

  // zram
  std::vector<std::string> algorithms;  // preference order
  std::optional<std::string> recompress_algorithm;
  std::optional<std::uint64_t> mem_limit_bytes;
  // file
  std::string path;
  // partition: "/dev/sdb2", "UUID=...", "LABEL=..."
  std::string device;
  // vram: GPU index or UUID; empty: the first GPU
  std::string gpu;
  // vram: "cuda" or "host" (the exporter's --store)
  std::string store = "cuda";
  // vram: NBD connections; 0: one per CPU, at most 16
  int connections = 0;
  // vram: the exporter's --spill ("" none, "lz4", "file:/PATH")
  std::string spill;
  // vram: VRAM always left free on the card for other programs, and the key
  // it came from ("reserve", or "policy.reserve_mib" by default).
  std::uint64_t reserve_bytes = 0;
  std::string reserve_key;
  // vram: the card, when the daemon could read it (store: cuda only);
  // otherwise card_unknown says why ("NVML: libnvidia-ml.so.1 not found"),
  // or is empty where nothing was asked (store: host).
  std::optional<GpuCard> card;
  std::string card_unknown;
  bool card_absent = false;  // the GPUs were read and none is the one `gpu:` names
};

struct ZswapSpec {
  std::optional<bool> enabled;
  std::vector<std::string> compressors;  // preference order; empty: not set
  std::optional<int> max_pool_percent;
  std::optional<int> accept_threshold_percent;
  std::optional<bool> shrinker_enabled;
};

struct SystemSpec {
  ZswapSpec zswap;
  std::map<std::string, long long> sysctl;  // "vm.swappiness" -> 150
  // `cgroups:`: name as written ("postgresql.service", common/cgroup_name.hpp)
  // -> cgroup file ("memory.swap.max") -> value in the kernel's form ("0",
  // "max", bytes).
  std::map<std::string, std::map<std::string, std::string>> cgroups;
};

}  // namespace tierswap
