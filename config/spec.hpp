// Spec: the validated configuration, as plain structs. Produced by
// config::load_*() (config/loader.hpp) from YAML; consumed by the planner.
// No yaml-cpp type appears here.
//
// Sizes that depend only on RAM ("50%", "min(ram / 2, 8G)") are resolved to
// bytes at load time from HostFacts; a VRAM tier's "25% of vram" keeps its
// expression until the GPU is known (size_bytes stays 0, size_text is set).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cgroup_name.hpp"

namespace tierswap::config {

// Where a value came from, for `FILE:LINE:COL: key.path: message` errors.
// line and col are 1-based; 0 means "not from a file" (profile or default).
struct SourceLoc {
  std::string file;
  int line = 0;
  int col = 0;
};

enum class Severity { error, warning };

// One finding of check/validation. Printed by format_diagnostic() as
// `file:line:col: path: message (hint)`.
struct Diagnostic {
  Severity severity = Severity::error;
  SourceLoc loc;
  std::string path;     // key path: "tiers[1].size", "sysctl.vm.swappiness"
  std::string message;  // "\"12X\" is not a size"
  std::string hint;     // "try 8G, 50%, min(ram / 2, 8G)"; may be empty
};

enum class Profile { none, desktop, server, db, k8s_node, gpu_workstation };
enum class TierKind { zram, file, partition, vram };

// The most NBD connections a vram tier may ask for (`connections:`).
inline constexpr int kMaxVramConnections = 16;
// The largest `reserve:` of a vram tier: 1 TiB, as policy.reserve_mib's bound.
inline constexpr std::uint64_t kMaxReserveBytes = 1ULL << 40;
enum class RecompressWhen { idle, huge };

struct Recompress {
  std::string algorithm;
  RecompressWhen when = RecompressWhen::idle;
};

struct Tier {
  std::string name;
  TierKind kind = TierKind::zram;
  int priority = 0;  // -1..32767; -1 lets the kernel choose
  bool discard = false;

  std::string size_text;         // as written ("min(ram / 2, 8G)")
  std::uint64_t size_bytes = 0;  // resolved; 0 for a partition (whole device) or unresolved vram

  // zram
  std::vector<std::string> algorithms;  // preference order; first the kernel offers wins
  std::optional<Recompress> recompress;
  std::optional<std::uint64_t> mem_limit_bytes;

  // file
  std::string path;

  // partition: "/dev/sdb2", "UUID=...", "LABEL=..."
  std::string device;

  // vram: GPU index ("0") or UUID ("GPU-..."); empty: the first GPU
  std::string gpu;
  // vram: where the exporter keeps the pages: "cuda" (GPU memory) or "host"
  // (RAM; for tests, where no GPU is).
  std::string store = "cuda";
  // vram: NBD connections (the kernel uses one per hardware queue); 0: one
  // per CPU, at most kMaxVramConnections.
  int connections = 0;
  // vram: where evacuated chunks go (`spill:`): "" none (demote by swapoff
  // only), "lz4" (compressed RAM) or "file" with spill_path.
  std::string spill;
  std::string spill_path;
  // vram: VRAM always left free on the card for other programs (`reserve:`)
  // as written ("2G", "10% of vram"); empty: policy.reserve_mib applies
  // (config/policy_settings.hpp, tier_reserve()). reserve_bytes is set when
  // the value does not depend on the card's size ("0" is a valid reserve).
  std::string reserve_text;
  std::optional<std::uint64_t> reserve_bytes;

  // Location of each key of this tier as written ("size", "algorithm", ...),
  // and of the tier itself under key "".
  std::map<std::string, SourceLoc> locs;
};

struct Zswap {
  std::optional<bool> enabled;
  // `compressor:` may be one name or a preference list, like a zram tier's
  // `algorithm:`. `compressors` holds the list in preference order (the
  // planner picks the first this kernel accepts); `compressor` mirrors its
  // first entry for code that wants one name. Both are unset/empty when the
  // key is absent.
  std::optional<std::string> compressor;
  std::vector<std::string> compressors;
  std::optional<int> max_pool_percent;          // 1..100
  std::optional<int> accept_threshold_percent;  // 0..100
  std::optional<bool> shrinker_enabled;
  std::map<std::string, SourceLoc> locs;
};

// `policy:` as the file writes it: each key nullopt unless set there.
// effective_policy() (config/policy_settings.hpp) fills the rest from the
// profile's defaults. Ranges are the schema's (schema.cpp).
struct PolicyKeys {
  std::optional<long long> reserve_mib;          // 0..1048576
  std::optional<long long> foreign_vram_mib;     // 0..1048576; 0: rule off
  std::optional<long long> latency_p99_us;       // 0..10000000; 0: rule off
  std::optional<long long> io_pressure_percent;  // 1..100
  std::optional<bool> on_battery;
  std::optional<long long> cgroup_full_percent;       // 0..100; 0: rule off
  std::optional<long long> swap_in_pages_per_s;       // 0..10000000; 0: arm off
  std::optional<long long> cooldown_seconds;          // 0..86400
  std::optional<long long> hysteresis_percent;        // 0..90
  std::optional<long long> max_transitions_per_hour;  // 2..60
  std::map<std::string, SourceLoc> locs;
};

// `cgroups:` as written: per slice, unit or cgroup path (the map's key, as
// written: "system.slice", "postgresql.service", "machine.slice/vm1.scope"),
// the memory limits to set. Each value is in the kernel's own form: a byte
// count rounded down to whole pages ("1073741824"), "0", or "max". Where the
// name lives under /sys/fs/cgroup is the cgroup kind's business
// (backends/cgroup/cgroup_kind.hpp).
struct CgroupLimits {
  std::map<std::string, std::string> values;  // "memory.high" -> "1073741824"
  std::map<std::string, SourceLoc> locs;      // "memory.high" -> where; "" -> the name
};

// The cgroup v2 files a `cgroups:` entry may set.
inline constexpr const char* kCgroupKeys[] = {"memory.high", "memory.max", "memory.swap.max",
                                              "memory.zswap.max"};

// `metrics:` (Prometheus text exposition; off when both are unset).
struct MetricsSettings {
  // node_exporter textfile collector: the file tierswapd rewrites (atomically)
  // on every observe tick; absolute, ending in ".prom".
  std::optional<std::string> textfile;
  // HTTP endpoint serving GET /metrics: loopback "127.0.0.1:9109" /
  // "[::1]:9109"; a non-loopback address only as written (a warning; see
  // config/metrics_settings.hpp).
  std::optional<std::string> listen;
  std::map<std::string, SourceLoc> locs;
  // What the daemon acts on (where each key was written does not matter).
  [[nodiscard]] bool same_outputs(const MetricsSettings& o) const {
    return textfile == o.textfile && listen == o.listen;
  }
};

struct Spec {
  int version = 1;
  Profile profile = Profile::none;
  std::string source;  // file name, or "<embedded default>"

  // Only the keys the schema allows: vm.swappiness (0..200), vm.page-cluster,
  // vm.watermark_scale_factor, vm.vfs_cache_pressure, vm.min_free_kbytes.
  std::map<std::string, long long> sysctl;
  std::map<std::string, SourceLoc> sysctl_locs;

  Zswap zswap;
  PolicyKeys policy;
  // Slice/unit name as written -> its limits; only from the file (no
  // profile sets any).
  std::map<std::string, CgroupLimits> cgroups;
  MetricsSettings metrics;
  // The user's tiers in file order when the file has a `tiers:` key (even an
  // empty one: `tiers: []` asks for none), else the profile's; the two are
  // never mixed. Planning sorts by priority.
  std::vector<Tier> tiers;
  // Where `tiers:` was written; nullopt when the file has no `tiers:` key
  // (then the tiers, if any, are the profile's).
  std::optional<SourceLoc> tiers_loc;

  // Where `profile:` was written (line 0 when absent); whole-spec warnings
  // such as "a small disk swap is recommended" point here.
  SourceLoc profile_loc;
};

// Facts about the machine that size expressions need.
struct HostFacts {
  std::uint64_t ram_bytes = 0;   // MemTotal
  std::uint64_t vram_bytes = 0;  // 0 when unknown
};

// Names as written in YAML: "desktop", "k8s-node", "gpu-workstation",
// "zram", "file", ...; Profile::none is "none".
const char* to_string(Profile p);
const char* to_string(TierKind k);
const char* to_string(RecompressWhen w);  // "idle", "huge"

// Inverses of to_string(); nullopt for a name the schema does not know
// (profile_from_string("none") is nullopt too: it is not a YAML value).
std::optional<Profile> profile_from_string(std::string_view name);
std::optional<TierKind> tier_kind_from_string(std::string_view name);
std::optional<RecompressWhen> recompress_when_from_string(std::string_view name);

}  // namespace tierswap::config
