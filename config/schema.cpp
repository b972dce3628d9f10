// Walks the YAML tree of a version-1 config, checks every key against the
// schema and fills a Spec. Each problem becomes one Diagnostic and the walk
// goes on, so that `tierswapctl check` shows everything at once.
//
// yaml-cpp is used only here and in yaml_limits.cpp (which bounds aliases
// before the tree is built): its exceptions (malformed YAML) are caught at
// the top, and positions come from Node::Mark() (0-based; printed 1-based).
#include "config/schema.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/cgroup_name.hpp"
#include "common/tier_name.hpp"
#include "config/metrics_settings.hpp"
#include "config/size_expr.hpp"
#include "config/suggest.hpp"
#include "config/yaml_limits.hpp"

namespace tierswap::config {
namespace {

const std::vector<std::string> kTopKeys = {"version", "profile", "sysctl",  "zswap",
                                           "tiers",   "policy",  "cgroups", "metrics"};
const std::vector<std::string> kMetricsKeys = {"textfile", "listen"};
std::vector<std::string> cgroup_keys() {
  return {std::begin(kCgroupKeys), std::end(kCgroupKeys)};
}
const std::vector<std::string> kZswapKeys = {"enabled", "compressor", "max_pool_percent",
                                             "accept_threshold_percent", "shrinker_enabled"};
// `policy:` keys with their ranges (PolicyKeys in spec.hpp); on_battery is
// the one boolean.
struct PolicyRule {
  const char* key;
  long long min;
  long long max;
  std::optional<long long> PolicyKeys::*field;
};
const std::vector<PolicyRule> kPolicyRules = {
    {"reserve_mib", 0, 1048576, &PolicyKeys::reserve_mib},
    {"foreign_vram_mib", 0, 1048576, &PolicyKeys::foreign_vram_mib},
    {"latency_p99_us", 0, 10000000, &PolicyKeys::latency_p99_us},
    {"io_pressure_percent", 1, 100, &PolicyKeys::io_pressure_percent},
    {"cgroup_full_percent", 0, 100, &PolicyKeys::cgroup_full_percent},
    {"swap_in_pages_per_s", 0, 10000000, &PolicyKeys::swap_in_pages_per_s},
    {"cooldown_seconds", 0, 86400, &PolicyKeys::cooldown_seconds},
    {"hysteresis_percent", 0, 90, &PolicyKeys::hysteresis_percent},
    {"max_transitions_per_hour", 2, 60, &PolicyKeys::max_transitions_per_hour},
};
std::vector<std::string> policy_keys() {
  std::vector<std::string> keys;
  for (const auto& r : kPolicyRules) keys.emplace_back(r.key);
  keys.emplace_back("on_battery");
  return keys;
}
const std::vector<std::string> kRecompressKeys = {"algorithm", "when"};
const std::vector<std::string> kSpillKeys = {"kind", "path"};
const std::vector<std::string> kCommonTierKeys = {"name", "kind", "priority", "discard"};

// Keys each kind adds to the common ones.
const std::vector<std::string>& kind_keys(TierKind k) {
  static const std::vector<std::string> zram = {"size", "algorithm", "recompress", "mem_limit"};
  static const std::vector<std::string> file = {"path", "size"};
  static const std::vector<std::string> partition = {"device"};
  static const std::vector<std::string> vram = {"size", "gpu", "store", "connections", "spill", "reserve"};
  switch (k) {
    case TierKind::zram:
      return zram;
    case TierKind::file:
      return file;
    case TierKind::partition:
      return partition;
    case TierKind::vram:
      return vram;
  }
  return zram;
}

const std::vector<TierKind> kAllKinds = {TierKind::zram, TierKind::file, TierKind::partition, TierKind::vram};

std::vector<std::string> tier_keys(std::optional<TierKind> kind) {
  std::vector<std::string> keys = kCommonTierKeys;
  for (TierKind k : kAllKinds) {
    if (kind && *kind != k) continue;
    for (const auto& key : kind_keys(k))
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  return keys;
}

std::vector<std::string> profile_names() {
  return {"desktop", "server", "db", "k8s-node", "gpu-workstation"};
}

int default_priority(TierKind k) {
  switch (k) {
    case TierKind::zram:
      return 100;
    case TierKind::vram:
      return 50;
    case TierKind::file:
    case TierKind::partition:
      return 10;
  }
  return 10;
}

// Describes a node's type for "expected X, got Y" messages.
std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return fmt::format("\"{}\"", n.Scalar());
    default:
      return "nothing";
  }
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class Reader {
 public:
  Reader(std::string_view source, const HostFacts& host, std::vector<Diagnostic>& out)
      : source_(source), host_(host), out_(out) {}

  Spec read(const YAML::Node& root) {
    Spec spec;
    spec.source = source_;
    spec.profile_loc = SourceLoc{source_, 0, 0};
    if (root.IsNull()) return spec;  // an empty file asks for nothing
    if (!root.IsMap()) {
      error(loc(root), "", fmt::format("expected a map of settings at the top level, got {}", describe(root)),
            "start with keys such as profile:, sysctl:, zswap:, tiers:");
      return spec;
    }
    for_each_key(root, "", kTopKeys,
                 [&](const std::string& key, const YAML::Node& value, SourceLoc at, SourceLoc key_at) {
                   if (key == "version") read_version(value, at);
                   if (key == "profile") read_profile(value, at, spec);
                   if (key == "sysctl") read_sysctl(value, at, spec);
                   if (key == "zswap") read_zswap(value, at, spec.zswap);
                   if (key == "policy") read_policy(value, at, spec.policy);
                   if (key == "cgroups") read_cgroups(value, at, spec);
                   if (key == "metrics") read_metrics(value, at, spec.metrics);
                   if (key == "tiers") {
                     spec.tiers_loc = key_at;
                     read_tiers(value, at, spec);
                   }
                 });
    return spec;
  }

 private:
  // --- reporting --------------------------------------------------------

  SourceLoc loc(const YAML::Node& n) const {
    YAML::Mark m = n.Mark();
    if (m.line < 0) return SourceLoc{source_, 0, 0};
    return SourceLoc{source_, m.line + 1, m.column + 1};
  }

  // A null value ("size:" with nothing after it) is placed by yaml-cpp on
  // the next token, which may be lines below: point at the key instead.
  SourceLoc value_loc(const YAML::Node& key, const YAML::Node& value) const {
    return value.IsNull() ? loc(key) : loc(value);
  }

  void error(SourceLoc at, std::string path, std::string message, std::string hint = {}) {
    out_.push_back(
        Diagnostic{Severity::error, std::move(at), std::move(path), std::move(message), std::move(hint)});
  }

  static std::string join_path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
  }

  // --- generic walkers ----------------------------------------------------

  // Calls `fn(key, value, value_loc, key_loc)` for each key of `map` that is
  // in `allowed`; reports unknown
  // keys (with a "did you mean"), non-scalar keys and duplicate keys.
  void for_each_key(
      const YAML::Node& map, const std::string& path, const std::vector<std::string>& allowed,
      const std::function<void(const std::string&, const YAML::Node&, SourceLoc, SourceLoc)>& fn) {
    std::map<std::string, int> seen;  // key -> line
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies, not references: it-> returns a proxy that dies with the
      // statement (ASan: stack-use-after-scope). A Node is a cheap handle.
      const YAML::Node k = it->first;
      const YAML::Node v = it->second;
      if (!k.IsScalar()) {
        error(loc(k), path, fmt::format("keys must be plain names, got {}", describe(k)));
        continue;
      }
      std::string key = k.Scalar();
      std::string key_path = join_path(path, key);
      if (auto [pos, fresh] = seen.emplace(key, loc(k).line); !fresh) {
        error(loc(k), key_path, "duplicate key",
              fmt::format("it is already set on line {}; keep one", pos->second));
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        unknown_key(loc(k), key_path, key, allowed);
        continue;
      }
      fn(key, v, value_loc(k, v), loc(k));
    }
  }

  void unknown_key(SourceLoc at, std::string path, const std::string& key,
                   const std::vector<std::string>& allowed) {
    if (auto near = closest(key, allowed))
      error(std::move(at), std::move(path), "unknown key", fmt::format("did you mean \"{}\"?", *near));
    else
      error(std::move(at), std::move(path), "unknown key", "allowed: " + join(allowed));
  }

  bool expect_map(const YAML::Node& v, SourceLoc at, const std::string& path, std::string_view example) {
    if (v.IsMap()) return true;
    error(std::move(at), path, fmt::format("expected a map, got {}", describe(v)), std::string(example));
    return false;
  }

  std::optional<long long> integer(const YAML::Node& v, SourceLoc at, const std::string& path, long long min,
                                   long long max) {
    if (!v.IsScalar()) {
      error(std::move(at), path, fmt::format("expected an integer, got {}", describe(v)));
      return std::nullopt;
    }
    const std::string& s = v.Scalar();
    long long n = 0;
    const char* first = s.data();
    const char* last = s.data() + s.size();
    if (first != last && *first == '+') ++first;
    auto [end, ec] = std::from_chars(first, last, n);
    if (ec == std::errc::result_out_of_range && end == last) {
      error(std::move(at), path, fmt::format("{} is out of range", s),
            fmt::format("allowed: {}..{}", min, max));
      return std::nullopt;
    }
    if (ec != std::errc() || end != last || first == last) {
      error(std::move(at), path, fmt::format("expected an integer, got \"{}\"", s));
      return std::nullopt;
    }
    if (n < min || n > max) {
      error(std::move(at), path, fmt::format("{} is out of range", n),
            fmt::format("allowed: {}..{}", min, max));
      return std::nullopt;
    }
    return n;
  }

  std::optional<bool> boolean(const YAML::Node& v, SourceLoc at, const std::string& path) {
    if (v.IsScalar()) {
      std::string s = lower(v.Scalar());
      if (s == "true" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "no" || s == "off") return false;
    }
    error(std::move(at), path, fmt::format("expected true or false, got {}", describe(v)));
    return std::nullopt;
  }

  std::optional<std::string> string(const YAML::Node& v, SourceLoc at, const std::string& path) {
    if (v.IsScalar() && !v.Scalar().empty()) return v.Scalar();
    error(std::move(at), path,
          fmt::format("expected a string, got {}", v.IsScalar() ? "an empty one" : describe(v)));
    return std::nullopt;
  }

  // Kernel crypto names: "zstd", "lzo-rle", "842", "lz4hc".
  static bool valid_algorithm(const std::string& s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
  }

  // One algorithm name or a preference list of them.
  std::optional<std::vector<std::string>> algorithm_list(const YAML::Node& v, SourceLoc at,
                                                         const std::string& path) {
    std::vector<std::string> names;
    bool ok = true;
    auto take = [&](const YAML::Node& item, SourceLoc item_at, const std::string& item_path) {
      if (!item.IsScalar()) {
        error(item_at, item_path, fmt::format("expected an algorithm name, got {}", describe(item)));
        ok = false;
      } else if (!valid_algorithm(item.Scalar())) {
        error(item_at, item_path, fmt::format("\"{}\" is not an algorithm name", item.Scalar()),
              "names look like zstd, lz4, lzo-rle");
        ok = false;
      } else {
        names.push_back(item.Scalar());
      }
    };
    if (v.IsSequence()) {
      if (v.size() == 0) {
        error(at, path, "the list is empty", "give at least one name, e.g. [zstd, lz4]");
        return std::nullopt;
      }
      for (std::size_t i = 0; i < v.size(); ++i) take(v[i], loc(v[i]), fmt::format("{}[{}]", path, i));
    } else {
      take(v, at, path);
    }
    if (!ok) return std::nullopt;
    return names;
  }

  std::optional<SizeValue> size(const YAML::Node& v, SourceLoc at, const std::string& path,
                                const SizeOptions& opts, std::string* text) {
    if (!v.IsScalar()) {
      error(std::move(at), path, fmt::format("expected a size, got {}", describe(v)),
            "try 8G, 50%, min(ram / 2, 8G)");
      return std::nullopt;
    }
    if (text) *text = v.Scalar();
    auto r = evaluate_size(v.Scalar(), host_, opts);
    if (!r) {
      error(std::move(at), path, r.error().message, r.error().hint);
      return std::nullopt;
    }
    return *r;
  }

  // --- top level ----------------------------------------------------------

  void read_version(const YAML::Node& v, SourceLoc at) {
    auto n = integer(v, at, "version", 0, 1000000);
    if (n && *n != 1)
      error(at, "version", fmt::format("unsupported version {}", *n), "this tierswap reads version 1");
  }

  void read_profile(const YAML::Node& v, SourceLoc at, Spec& spec) {
    spec.profile_loc = at;
    auto name = string(v, at, "profile");
    if (!name) return;
    if (auto p = profile_from_string(*name)) {
      spec.profile = *p;
      return;
    }
    std::string valid = "valid: " + join(profile_names());
    if (auto near = closest(*name, profile_names()))
      error(at, "profile", fmt::format("unknown profile \"{}\"", *name),
            fmt::format("did you mean \"{}\"? {}", *near, valid));
    else
      error(at, "profile", fmt::format("unknown profile \"{}\"", *name), valid);
  }

  void read_sysctl(const YAML::Node& v, SourceLoc at, Spec& spec) {
    if (v.IsNull()) return;
    if (!expect_map(v, at, "sysctl", "e.g. sysctl: { vm.swappiness: 100 }")) return;
    std::vector<std::string> allowed;
    for (const auto& rule : sysctl_rules()) allowed.emplace_back(rule.key);
    for (auto it = v.begin(); it != v.end(); ++it) {
      const YAML::Node k = it->first;  // a copy: see for_each_key
      const YAML::Node val = it->second;
      if (!k.IsScalar()) {
        error(loc(k), "sysctl", fmt::format("keys must be sysctl names, got {}", describe(k)));
        continue;
      }
      const std::string key = k.Scalar();
      const std::string path = "sysctl." + key;
      const SourceLoc val_at = value_loc(k, val);
      auto rule = std::find_if(sysctl_rules().begin(), sysctl_rules().end(),
                               [&](const SysctlRule& r) { return key == r.key; });
      if (rule == sysctl_rules().end()) {
        auto near = closest(key, allowed);
        // A near miss is a typo; anything else is a sysctl we leave alone.
        error(loc(k), path, near ? "unknown key" : "not managed by tierswap",
              near ? fmt::format("did you mean \"{}\"?", *near) : "allowed: " + join(allowed));
        continue;
      }
      if (spec.sysctl_locs.contains(key)) {
        error(loc(k), path, "duplicate key",
              fmt::format("it is already set on line {}; keep one", spec.sysctl_locs[key].line));
        continue;
      }
      spec.sysctl_locs[key] = val_at;
      auto n = integer(val, val_at, path, rule->min, rule->max);
      if (n && key == "vm.min_free_kbytes" && !min_free_fits_ram(*n, val_at, path)) n.reset();
      if (n) spec.sysctl[key] = *n;
    }
  }

  // vm.min_free_kbytes is what the kernel keeps free at all times (kswapd
  // reclaims up to 1.5 times it, direct reclaim and then the OOM killer
  // start below it). Its own default is sqrt(16 * RAM in kB) kB, capped at
  // 256 MiB: about 0.1% of 16 GiB. More than kMinFreeRamPercent of RAM
  // takes memory from every program for nothing and, near the kernel's
  // int limit, makes the machine unusable at once. Unknown RAM: no bound.
  bool min_free_fits_ram(long long kbytes, const SourceLoc& at, const std::string& path) {
    if (host_.ram_bytes == 0) return true;
    const auto max = static_cast<long long>(host_.ram_bytes / 1024 * kMinFreeRamPercent / 100);
    if (kbytes <= max) return true;
    error(at, path,
          fmt::format("{} kB is more than {}% of this machine's RAM ({} kB)", kbytes, kMinFreeRamPercent,
                      host_.ram_bytes / 1024),
          fmt::format("allowed: 1..{}; the kernel keeps this much free at all times", std::max(1LL, max)));
    return false;
  }

  void read_zswap(const YAML::Node& v, SourceLoc at, Zswap& z) {
    if (v.IsNull()) return;
    if (!expect_map(v, at, "zswap", "e.g. zswap: { enabled: true, compressor: [zstd, lz4] }")) return;
    for_each_key(v, "zswap", kZswapKeys,
                 [&](const std::string& key, const YAML::Node& val, SourceLoc val_at, SourceLoc) {
                   const std::string path = "zswap." + key;
                   z.locs[key] = val_at;
                   if (key == "enabled") z.enabled = boolean(val, val_at, path);
                   if (key == "shrinker_enabled") z.shrinker_enabled = boolean(val, val_at, path);
                   if (key == "max_pool_percent")
                     if (auto n = integer(val, val_at, path, 1, 100))
                       z.max_pool_percent = static_cast<int>(*n);
                   if (key == "accept_threshold_percent")
                     if (auto n = integer(val, val_at, path, 0, 100))
                       z.accept_threshold_percent = static_cast<int>(*n);
                   if (key == "compressor") {
                     if (auto names = algorithm_list(val, val_at, path)) {
                       z.compressors = *names;
                       z.compressor = names->front();
                     }
                   }
                 });
  }

  void read_policy(const YAML::Node& v, SourceLoc at, PolicyKeys& p) {
    if (v.IsNull()) return;
    if (!expect_map(v, at, "policy", "e.g. policy: { reserve_mib: 1024, on_battery: false }")) return;
    for_each_key(v, "policy", policy_keys(),
                 [&](const std::string& key, const YAML::Node& val, SourceLoc val_at, SourceLoc) {
                   const std::string path = "policy." + key;
                   p.locs[key] = val_at;
                   if (key == "on_battery") {
                     p.on_battery = boolean(val, val_at, path);
                     return;
                   }
                   for (const auto& r : kPolicyRules)
                     if (key == r.key) p.*(r.field) = integer(val, val_at, path, r.min, r.max);
                 });
  }

  // --- cgroups ------------------------------------------------------------

  void read_cgroups(const YAML::Node& v, SourceLoc at, Spec& spec) {
    if (v.IsNull()) return;
    if (!expect_map(v, at, "cgroups", "e.g. cgroups: { database.slice: { memory.swap.max: 0 } }")) return;
    for_each_name(
        v, "cgroups",
        [&](const std::string& name, const YAML::Node& val, SourceLoc val_at, SourceLoc key_at) {
          const std::string path = "cgroups." + name;
          if (auto rel = cgroup_relative_path(name); !rel) {
            error(key_at, path, rel.error().message,
                  "name a slice (system.slice), a unit (postgresql.service) or a path below /sys/fs/cgroup");
            return;
          }
          CgroupLimits limits;
          limits.locs[""] = key_at;
          if (val.IsNull() || (val.IsMap() && val.size() == 0)) {
            error(val_at, path, "no limits given", "set at least one of " + join(cgroup_keys()));
            return;
          }
          if (!expect_map(val, val_at, path, "e.g. { memory.high: 8G, memory.swap.max: 0 }")) return;
          for_each_key(val, path, cgroup_keys(),
                       [&](const std::string& key, const YAML::Node& lv, SourceLoc lv_at, SourceLoc) {
                         limits.locs[key] = lv_at;
                         if (auto bytes = cgroup_limit(lv, lv_at, path + "." + key))
                           limits.values[key] = *bytes;
                       });
          check_high_below_max(limits, path);
          spec.cgroups[name] = std::move(limits);
        });
  }

  // "max", "0", or a size (rounded down to whole pages, as the kernel
  // rounds: a value read back must equal the value written, or every
  // reload would write it again). The kernel's own form.
  std::optional<std::string> cgroup_limit(const YAML::Node& v, SourceLoc at, const std::string& path) {
    if (v.IsScalar()) {
      const std::string s = lower(v.Scalar());
      if (s == "max") return std::string("max");
      if (s == "0") return std::string("0");
    }
    auto sz = size(v, at, path, SizeOptions{.round_to_page = true}, nullptr);
    if (!sz) return std::nullopt;
    return std::to_string(sz->bytes);
  }

  // memory.high above memory.max never throttles: the limit hits first.
  void check_high_below_max(const CgroupLimits& l, const std::string& path) {
    auto high = l.values.find("memory.high"), max = l.values.find("memory.max");
    if (high == l.values.end() || max == l.values.end() || max->second == "max") return;
    if (high->second == "max" || std::stoull(high->second) > std::stoull(max->second))
      out_.push_back(Diagnostic{
          Severity::warning, l.locs.at("memory.high"), path + ".memory.high",
          fmt::format("{} is above memory.max ({}): it never throttles", high->second, max->second),
          "memory.high is the soft limit; keep it below memory.max"});
  }

  // Like for_each_key, for maps whose keys are names the user picks.
  void for_each_name(
      const YAML::Node& map, const std::string& path,
      const std::function<void(const std::string&, const YAML::Node&, SourceLoc, SourceLoc)>& fn) {
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node k = it->first;  // copies: see for_each_key
      const YAML::Node v = it->second;
      if (!k.IsScalar()) {
        error(loc(k), path, fmt::format("keys must be names, got {}", describe(k)));
        continue;
      }
      if (auto [pos, fresh] = seen.emplace(k.Scalar(), loc(k).line); !fresh) {
        error(loc(k), path + "." + k.Scalar(), "duplicate key",
              fmt::format("it is already set on line {}; keep one", pos->second));
        continue;
      }
      fn(k.Scalar(), v, value_loc(k, v), loc(k));
    }
  }

  // --- metrics ------------------------------------------------------------

  void read_metrics(const YAML::Node& v, SourceLoc at, MetricsSettings& m) {
    if (v.IsNull()) return;
    if (!expect_map(v, at, "metrics",
                    "e.g. metrics: { listen: 127.0.0.1:9109, textfile: "
                    "/var/lib/prometheus/node-exporter/tierswap.prom }"))
      return;
    for_each_key(v, "metrics", kMetricsKeys,
                 [&](const std::string& key, const YAML::Node& val, SourceLoc val_at, SourceLoc) {
                   const std::string path = "metrics." + key;
                   m.locs[key] = val_at;
                   auto s = string(val, val_at, path);
                   if (!s) return;
                   if (key == "textfile") {
                     if (auto bad = check_textfile_path(*s))
                       error(val_at, path, *bad,
                             "e.g. /var/lib/prometheus/node-exporter/tierswap.prom (node_exporter's "
                             "--collector.textfile.directory)");
                     else
                       m.textfile = *s;
                   }
                   if (key == "listen") {
                     auto a = parse_listen_address(*s);
                     if (!a) {
                       error(val_at, path, a.error().message,
                             "e.g. 127.0.0.1:9109 or [::1]:9109 (loopback); a numeric address such as "
                             "0.0.0.0:9466 only where the network is the pod's own");
                     } else {
                       m.listen = *s;
                       if (!a->loopback)
                         out_.push_back(Diagnostic{
                             Severity::warning, val_at, path,
                             fmt::format("{} is not a loopback address: anyone who reaches it reads the "
                                         "machine's memory figures (the endpoint has no authentication)",
                                         *s),
                             "keep 127.0.0.1:9109 unless this is a pod's own network namespace or a "
                             "firewall closes the port"});
                     }
                   }
                 });
  }

  // --- tiers --------------------------------------------------------------

  void read_tiers(const YAML::Node& v, SourceLoc at, Spec& spec) {
    if (v.IsNull()) return;
    if (!v.IsSequence()) {
      error(at, "tiers", fmt::format("expected a list of tiers, got {}", describe(v)),
            "write each tier as a list item: - name: zram");
      return;
    }
    std::map<std::string, std::pair<std::size_t, int>> names;  // name -> (index, line)
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string path = fmt::format("tiers[{}]", i);
      const YAML::Node item = v[i];
      if (!item.IsMap()) {
        error(loc(item), path, fmt::format("expected a map, got {}", describe(item)),
              "a tier looks like { name: zram, kind: zram, size: 8G }");
        continue;
      }
      Tier tier = read_tier(item, path);
      if (!tier.name.empty()) {
        auto [pos, fresh] = names.emplace(tier.name, std::make_pair(i, tier.locs["name"].line));
        if (!fresh)
          error(tier.locs["name"], path + ".name", fmt::format("duplicate tier name \"{}\"", tier.name),
                fmt::format("tiers[{}] on line {} has it already; names must be unique", pos->second.first,
                            pos->second.second));
      }
      spec.tiers.push_back(std::move(tier));
    }
  }

  Tier read_tier(const YAML::Node& map, const std::string& path) {
    Tier tier;
    tier.locs[""] = loc(map);

    // kind decides which keys are allowed, so read it first.
    std::optional<TierKind> kind;
    if (const YAML::Node k = map["kind"]; k) {
      SourceLoc at = loc(k);
      if (auto s = string(k, at, path + ".kind")) {
        kind = tier_kind_from_string(*s);
        if (!kind)
          error(at, path + ".kind", fmt::format("unknown kind \"{}\"", *s),
                "valid: zram, file, partition, vram");
      }
    } else {
      error(loc(map), path + ".kind", "missing: every tier needs a kind",
            "kind: zram, file, partition or vram");
    }
    if (kind) {
      tier.kind = *kind;
      tier.priority = default_priority(*kind);
    }

    const std::vector<std::string> all_keys = tier_keys(std::nullopt);
    const std::vector<std::string> own_keys = tier_keys(kind);
    for_each_key(map, path, all_keys,
                 [&](const std::string& key, const YAML::Node& v, SourceLoc at, SourceLoc key_at) {
                   const std::string key_path = path + "." + key;
                   if (key == "kind") {
                     tier.locs["kind"] = at;
                     return;
                   }
                   if (std::find(own_keys.begin(), own_keys.end(), key) == own_keys.end()) {
                     wrong_kind_key(key_at, key_path, key, *kind);
                     return;
                   }
                   tier.locs[key] = at;
                   read_tier_key(tier, key, v, at, key_path);
                 });

    if (!tier.locs.contains("name"))
      error(loc(map), path + ".name", "missing: every tier needs a name", "e.g. name: zram");
    if (kind == TierKind::zram) zram_size_fits_ram(tier, path + ".size");
    if (kind) {
      auto require = [&](const char* key, const char* example) {
        if (!tier.locs.contains(key))
          error(loc(map), path + "." + key,
                fmt::format("missing: a {} tier needs a {}", to_string(*kind), key), example);
      };
      switch (*kind) {
        case TierKind::zram:
          require("size", "e.g. size: min(ram / 2, 8G)");
          break;
        case TierKind::file:
          require("path", "e.g. path: /var/swap/tierswap");
          require("size", "e.g. size: 4G");
          break;
        case TierKind::partition:
          require("device", "e.g. device: /dev/sdb2, UUID=... or LABEL=...");
          break;
        case TierKind::vram:
          require("size", "e.g. size: 25% of vram");
          break;
      }
    }
    return tier;
  }

  // A zram device holds its pages compressed in RAM: a disksize above RAM
  // fills only when pages compress well (2:1 is typical for zstd/lz4 on
  // anonymous memory), so more than kMaxZramRamRatio times RAM can never
  // fill and only wastes the device's table memory (about 0.1% of the
  // disksize). Unknown RAM: no bound.
  void zram_size_fits_ram(const Tier& tier, const std::string& path) {
    if (host_.ram_bytes == 0 || tier.size_bytes <= kMaxZramRamRatio * host_.ram_bytes) return;
    error(tier.locs.at("size"), path,
          fmt::format("{} bytes is more than {} times this machine's RAM ({} bytes)", tier.size_bytes,
                      kMaxZramRamRatio, host_.ram_bytes),
          fmt::format("zram keeps pages compressed in RAM; try at most {}%, e.g. min(ram / 2, 8G)",
                      kMaxZramRamRatio * 100));
  }

  void wrong_kind_key(SourceLoc at, const std::string& path, const std::string& key, TierKind kind) {
    std::vector<std::string> owners;
    for (TierKind k : kAllKinds) {
      const auto& keys = kind_keys(k);
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) owners.emplace_back(to_string(k));
    }
    std::string owner_text = join(owners, " and ");
    error(std::move(at), path,
          fmt::format("\"{}\" does not apply to a {} tier (it is a key of {} tiers)", key, to_string(kind),
                      owner_text),
          owners.size() == 1 ? fmt::format("remove it, or set kind: {}", owners.front()) : "remove it");
  }

  void read_tier_key(Tier& tier, const std::string& key, const YAML::Node& v, SourceLoc at,
                     const std::string& path) {
    if (key == "name") {
      if (auto s = string(v, at, path)) {
        tier.name = *s;
        if (!valid_tier_name(*s))
          error(at, path, fmt::format("\"{}\" is not a valid tier name", *s),
                "use 1 to 32 of a-z A-Z 0-9 _ -: the name becomes part of a D-Bus object path");
      }
    } else if (key == "priority") {
      if (auto n = integer(v, at, path, -1, 32767)) tier.priority = static_cast<int>(*n);
    } else if (key == "discard") {
      if (auto b = boolean(v, at, path)) tier.discard = *b;
    } else if (key == "size") {
      SizeOptions opts{.allow_vram = tier.kind == TierKind::vram, .round_to_page = true};
      if (auto s = size(v, at, path, opts, &tier.size_text)) tier.size_bytes = s->bytes;
    } else if (key == "mem_limit") {
      if (auto s = size(v, at, path, SizeOptions{}, nullptr)) tier.mem_limit_bytes = s->bytes;
    } else if (key == "algorithm") {
      if (auto names = algorithm_list(v, at, path)) tier.algorithms = *names;
    } else if (key == "recompress") {
      read_recompress(tier, v, at, path);
    } else if (key == "path") {
      if (auto s = string(v, at, path)) {
        tier.path = *s;
        if (s->front() != '/')
          error(at, path, fmt::format("\"{}\" is not an absolute path", *s),
                "write it from /, e.g. /var/swap/tierswap");
      }
    } else if (key == "device") {
      if (auto s = string(v, at, path)) {
        tier.device = *s;
        if (!valid_device(*s))
          error(at, path, fmt::format("\"{}\" does not name a partition", *s),
                "use an absolute /dev path, UUID=... or LABEL=...");
      }
    } else if (key == "gpu") {
      if (auto s = string(v, at, path)) tier.gpu = *s;
    } else if (key == "store") {
      if (auto s = string(v, at, path)) {
        if (*s == "cuda" || *s == "host")
          tier.store = *s;
        else
          error(at, path, fmt::format("unknown store \"{}\"", *s),
                "valid: cuda (GPU memory, the default), host (RAM: for tests)");
      }
    } else if (key == "connections") {
      if (auto n = integer(v, at, path, 1, kMaxVramConnections)) tier.connections = static_cast<int>(*n);
    } else if (key == "spill") {
      read_spill(tier, v, at, path);
    } else if (key == "reserve") {
      read_reserve(tier, v, at, path);
    }
  }

  // reserve: a size ("2G", "10% of vram", "0"), at most kMaxReserveBytes,
  // and never the whole card.
  void read_reserve(Tier& tier, const YAML::Node& v, SourceLoc at, const std::string& path) {
    const char* hint = "e.g. reserve: 2G, reserve: 10% of vram, or reserve: 0 (default: policy.reserve_mib)";
    if (!v.IsScalar()) {
      error(std::move(at), path, fmt::format("expected a size, got {}", describe(v)), hint);
      return;
    }
    const std::string text = v.Scalar();
    tier.reserve_text = text;
    if (text == "0") {
      tier.reserve_bytes = 0;
      return;
    }
    const SizeOptions opts{.allow_vram = true};
    auto r = evaluate_size(text, host_, opts);
    if (!r) {
      error(std::move(at), path, r.error().message, hint);
      return;
    }
    if (r->resolved) {
      if (r->bytes > kMaxReserveBytes)
        error(std::move(at), path,
              fmt::format("\"{}\" is {} bytes, more than the largest reserve ({} bytes, 1T)", text, r->bytes,
                          kMaxReserveBytes),
              hint);
      else
        tier.reserve_bytes = r->bytes;
      return;
    }
    // Depends on the card: it must leave some of any card free for the tier.
    HostFacts probe = host_;
    probe.vram_bytes = kMaxReserveBytes;
    auto whole = evaluate_size(text, probe, opts);
    if (whole && whole->bytes >= probe.vram_bytes)
      error(std::move(at), path, fmt::format("\"{}\" is the whole card's memory or more", text),
            "a reserve is what stays free for other programs, e.g. reserve: 10% of vram");
  }

  // spill: {kind: lz4} or {kind: file, path: /var/lib/tierswap/spill-NAME}
  void read_spill(Tier& tier, const YAML::Node& v, SourceLoc at, const std::string& path) {
    if (!expect_map(v, at, path,
                    "e.g. spill: { kind: lz4 } or spill: { kind: file, path: /var/lib/tierswap/spill-gpu }"))
      return;
    std::string kind, file;
    SourceLoc kind_at = at, path_at = at;
    bool ok = true;
    for_each_key(v, path, kSpillKeys,
                 [&](const std::string& key, const YAML::Node& val, SourceLoc val_at, SourceLoc) {
                   const std::string key_path = path + "." + key;
                   tier.locs["spill." + key] = val_at;
                   auto s = string(val, val_at, key_path);
                   if (!s) {
                     ok = false;
                     return;
                   }
                   if (key == "kind") {
                     kind = *s;
                     kind_at = val_at;
                     if (kind != "lz4" && kind != "file") {
                       error(val_at, key_path, fmt::format("unknown spill kind \"{}\"", kind),
                             "valid: lz4 (compressed RAM), file (a file on local disk, with path:)");
                       ok = false;
                     }
                   } else {
                     file = *s;
                     path_at = val_at;
                     if (file.find_first_of(" \t\n") != std::string::npos) {
                       error(val_at, key_path, fmt::format("\"{}\" holds whitespace", file),
                             "pick a path without spaces, e.g. /var/lib/tierswap/spill-" + tier.name);
                       ok = false;
                     } else if (file.empty() || file.front() != '/' || file.back() == '/') {
                       error(val_at, key_path, fmt::format("\"{}\" is not an absolute path to a file", file),
                             "e.g. path: /var/lib/tierswap/spill-" + tier.name);
                       ok = false;
                     }
                   }
                 });
    if (!ok) return;
    if (kind.empty()) {
      error(at, path + ".kind", "missing: spill needs a kind", "kind: lz4 or kind: file");
      return;
    }
    if (kind == "file" && file.empty()) {
      error(kind_at, path + ".path", "missing: a file spill needs a path",
            "e.g. path: /var/lib/tierswap/spill-" + tier.name + " (created by tierswap-nbd; must not exist)");
      return;
    }
    if (kind == "lz4" && !file.empty()) {
      error(path_at, path + ".path", "an lz4 spill lives in RAM and takes no path",
            "remove path:, or use kind: file");
      return;
    }
    tier.spill = kind;
    tier.spill_path = file;
  }

  static bool valid_device(const std::string& s) {
    auto after = [&](std::string_view prefix) { return s.starts_with(prefix) && s.size() > prefix.size(); };
    return after("/dev/") || after("UUID=") || after("LABEL=");
  }

  void read_recompress(Tier& tier, const YAML::Node& v, SourceLoc at, const std::string& path) {
    if (!expect_map(v, at, path, "e.g. recompress: { algorithm: zstd, when: idle }")) return;
    Recompress r;
    bool ok = true;
    for_each_key(v, path, kRecompressKeys,
                 [&](const std::string& key, const YAML::Node& val, SourceLoc val_at, SourceLoc) {
                   const std::string key_path = path + "." + key;
                   tier.locs["recompress." + key] = val_at;
                   if (key == "algorithm") {
                     auto s = string(val, val_at, key_path);
                     if (s && !valid_algorithm(*s)) {
                       error(val_at, key_path, fmt::format("\"{}\" is not an algorithm name", *s),
                             "names look like zstd, lz4, lzo-rle");
                       s.reset();
                     }
                     if (s)
                       r.algorithm = *s;
                     else
                       ok = false;
                   }
                   if (key == "when") {
                     auto s = string(val, val_at, key_path);
                     auto when = s ? recompress_when_from_string(*s) : std::nullopt;
                     if (s && !when)
                       error(val_at, key_path, fmt::format("unknown value \"{}\"", *s), "valid: idle, huge");
                     if (when)
                       r.when = *when;
                     else
                       ok = false;
                   }
                 });
    if (!tier.locs.contains("recompress.algorithm")) {
      error(at, path + ".algorithm", "missing: recompress needs an algorithm", "e.g. algorithm: zstd");
      ok = false;
    }
    if (ok) tier.recompress = r;
  }

  std::string source_;
  const HostFacts& host_;
  std::vector<Diagnostic>& out_;
};

}  // namespace

bool valid_tier_name(std::string_view name) {
  return check_tier_name(name).has_value();
}

const std::vector<SysctlRule>& sysctl_rules() {
  static const std::vector<SysctlRule> rules = {
      {"vm.swappiness", 0, 200},
      {"vm.page-cluster", 0, 10},
      {"vm.watermark_scale_factor", 1, 3000},
      {"vm.vfs_cache_pressure", 1, 1000},
      {"vm.min_free_kbytes", 1, 2147483647},
  };
  return rules;
}

std::vector<std::string> schema_key_paths() {
  std::vector<std::string> out = kTopKeys;
  for (const auto& rule : sysctl_rules()) out.push_back(std::string("sysctl.") + rule.key);
  for (const auto& key : kZswapKeys) out.push_back("zswap." + key);
  for (const auto& key : tier_keys(std::nullopt)) out.push_back("tiers[]." + key);
  for (const auto& key : kRecompressKeys) out.push_back("tiers[].recompress." + key);
  for (const auto& key : kSpillKeys) out.push_back("tiers[].spill." + key);
  for (const auto& key : policy_keys()) out.push_back("policy." + key);
  for (const auto& key : cgroup_keys()) out.push_back("cgroups.NAME." + key);
  for (const auto& key : kMetricsKeys) out.push_back("metrics." + key);
  return out;
}

Spec read_user_config(std::string_view yaml, std::string_view source, const HostFacts& host,
                      std::vector<Diagnostic>& out) {
  if (auto d = check_alias_expansion(yaml, source)) {
    out.push_back(std::move(*d));
    Spec spec;
    spec.source = source;
    return spec;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    SourceLoc at{std::string(source), e.mark.line >= 0 ? e.mark.line + 1 : 0,
                 e.mark.column >= 0 ? e.mark.column + 1 : 0};
    out.push_back(Diagnostic{Severity::error, at, "", "malformed YAML: " + e.msg, ""});
    Spec spec;
    spec.source = source;
    return spec;
  }
  return Reader(source, host, out).read(root);
}

}  // namespace tierswap::config
