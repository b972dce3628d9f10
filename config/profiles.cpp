// Profile recipes, written as data rather than YAML so that a profile can
// never fail to parse at run time. The numbers are documented in
// profiles.hpp and in packaging/examples/<profile>.yaml.
#include "config/profiles.hpp"

#include <string>
#include <utility>

#include "config/size_expr.hpp"

namespace tierswap::config {
namespace {

class Recipe {
 public:
  Recipe(const HostFacts& host, std::string_view source) : host_(host), at_{std::string(source), 0, 0} {
    spec_.source = source;
  }

  Recipe& sysctl(const char* key, long long value) {
    spec_.sysctl[key] = value;
    spec_.sysctl_locs[key] = at_;
    return *this;
  }

  Recipe& zswap_enabled(bool on) {
    spec_.zswap.enabled = on;
    spec_.zswap.locs["enabled"] = at_;
    return *this;
  }

  Recipe& zswap_server_defaults() {
    Zswap& z = spec_.zswap;
    z.compressors = {"zstd", "lz4", "lzo"};
    z.compressor = z.compressors.front();
    z.max_pool_percent = 20;
    z.shrinker_enabled = true;
    for (const char* key : {"compressor", "max_pool_percent", "shrinker_enabled"}) z.locs[key] = at_;
    return zswap_enabled(true);
  }

  Recipe& desktop_zram() {
    Tier t = tier("zram", TierKind::zram, 100, "min(ram / 2, 8G)");
    t.algorithms = {"zstd", "lz4", "lzo-rle", "lzo"};
    t.locs["algorithm"] = at_;
    spec_.tiers.push_back(std::move(t));
    return *this;
  }

  Recipe& vram_tier() {
    spec_.tiers.push_back(tier("vram", TierKind::vram, 50, "25% of vram"));
    return *this;
  }

  Spec take() { return std::move(spec_); }

 private:
  Tier tier(const char* name, TierKind kind, int priority, const char* size) {
    Tier t;
    t.name = name;
    t.kind = kind;
    t.priority = priority;
    t.size_text = size;
    SizeOptions opts{.allow_vram = kind == TierKind::vram, .round_to_page = true};
    // The expressions are fixed; they fail only when RAM is unknown
    // (ram_bytes 0), and then the size stays 0 like an unknown VRAM's.
    if (auto v = evaluate_size(size, host_, opts)) t.size_bytes = v->bytes;
    for (const char* key : {"", "name", "kind", "priority", "size"}) t.locs[key] = at_;
    return t;
  }

  const HostFacts& host_;
  SourceLoc at_;
  Spec spec_;
};

}  // namespace

Spec profile_recipe(Profile p, const HostFacts& host, std::string_view source) {
  Recipe r(host, source);
  switch (p) {
    case Profile::none:
      break;
    case Profile::desktop:
      r.desktop_zram().sysctl("vm.swappiness", 150).sysctl("vm.page-cluster", 0).zswap_enabled(false);
      break;
    case Profile::server:
      r.zswap_server_defaults().sysctl("vm.swappiness", 60);
      break;
    case Profile::db:
      r.sysctl("vm.swappiness", 10).zswap_enabled(false);
      break;
    case Profile::k8s_node:
      r.zswap_enabled(false);
      break;
    case Profile::gpu_workstation:
      r.desktop_zram()
          .vram_tier()
          .sysctl("vm.swappiness", 150)
          .sysctl("vm.page-cluster", 0)
          .zswap_enabled(false);
      break;
  }
  Spec spec = r.take();
  spec.profile = p;
  return spec;
}

Spec merge_over_profile(const Spec& recipe, Spec user) {
  Spec out = std::move(user);

  // sysctl: the user's keys win, the profile fills the rest.
  for (const auto& [key, value] : recipe.sysctl) {
    if (out.sysctl_locs.contains(key)) continue;
    out.sysctl[key] = value;
    out.sysctl_locs[key] = recipe.sysctl_locs.at(key);
  }

  // zswap: key by key.
  Zswap& z = out.zswap;
  const Zswap& pz = recipe.zswap;
  auto fill = [&](auto& field, const auto& from, const char* key) {
    if (z.locs.contains(key) || !from) return;
    field = from;
    z.locs[key] = pz.locs.at(key);
  };
  fill(z.enabled, pz.enabled, "enabled");
  fill(z.max_pool_percent, pz.max_pool_percent, "max_pool_percent");
  fill(z.accept_threshold_percent, pz.accept_threshold_percent, "accept_threshold_percent");
  fill(z.shrinker_enabled, pz.shrinker_enabled, "shrinker_enabled");
  if (!z.locs.contains("compressor") && !pz.compressors.empty()) {
    z.compressors = pz.compressors;
    z.compressor = pz.compressor;
    z.locs["compressor"] = pz.locs.at("compressor");
  }

  // tiers: all of the file's, or all of the profile's.
  if (!out.tiers_loc) out.tiers = recipe.tiers;
  return out;
}

std::vector<ProfileSetting> profile_settings(const Spec& spec) {
  std::vector<ProfileSetting> out;
  if (spec.profile == Profile::none) return out;
  // A value the profile supplied carries line 0; the file's are 1-based.
  auto from_profile = [](const std::map<std::string, SourceLoc>& locs, const std::string& key) {
    auto it = locs.find(key);
    return it != locs.end() && it->second.line == 0;
  };
  for (const auto& [key, value] : spec.sysctl)
    if (from_profile(spec.sysctl_locs, key)) out.push_back({"sysctl." + key, std::to_string(value)});

  const Zswap& z = spec.zswap;
  auto flag = [](const std::optional<bool>& b) { return *b ? "true" : "false"; };
  auto zswap = [&](const char* key, bool set, std::string value) {
    if (set && from_profile(z.locs, key)) out.push_back({std::string("zswap.") + key, std::move(value)});
  };
  zswap("enabled", z.enabled.has_value(), z.enabled ? flag(z.enabled) : "");
  std::string compressors;
  for (const auto& c : z.compressors) compressors += (compressors.empty() ? "" : ", ") + c;
  zswap("compressor", !z.compressors.empty(), "[" + compressors + "]");
  zswap("max_pool_percent", z.max_pool_percent.has_value(),
        z.max_pool_percent ? std::to_string(*z.max_pool_percent) : "");
  zswap("accept_threshold_percent", z.accept_threshold_percent.has_value(),
        z.accept_threshold_percent ? std::to_string(*z.accept_threshold_percent) : "");
  zswap("shrinker_enabled", z.shrinker_enabled.has_value(),
        z.shrinker_enabled ? flag(z.shrinker_enabled) : "");

  if (!spec.tiers_loc) {
    for (std::size_t i = 0; i < spec.tiers.size(); ++i) {
      const Tier& t = spec.tiers[i];
      out.push_back({"tiers[" + std::to_string(i) + "]", t.name + " (" + to_string(t.kind) + ", " +
                                                             t.size_text + ", priority " +
                                                             std::to_string(t.priority) + ")"});
    }
  }
  return out;
}

}  // namespace tierswap::config
