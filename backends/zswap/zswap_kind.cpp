#include "backends/zswap/zswap_kind.hpp"

#include <algorithm>

#include "backends/hostfs/paths.hpp"
#include "backends/hostfs/value_step.hpp"
#include "backends/zswap/zswap.hpp"

namespace tierswap::zswap {

namespace {

struct Observed final : KindState {
  State state;
};

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

class ZswapKind final : public value_step::ValueKind {
 public:
  std::string_view name() const override { return "zswap"; }

  std::vector<Capability> probe(const HostFs& fs) const override {
    const auto s = zswap::observe(fs);
    std::vector<Capability> out{
        {"zswap", s.present, std::string(paths::zswap_parameters)},
        {"compressor list", fs.exists(paths::proc_crypto), std::string(paths::proc_crypto)}};
    for (const auto& n : parameter_names())
      out.push_back({"zswap." + n, s.params.contains(n), paths::zswap_param(n)});
    return out;
  }

  std::unique_ptr<KindState> observe(const HostFs& fs) const override {
    auto o = std::make_unique<Observed>();
    o->state = zswap::observe(fs);
    return o;
  }

  // Exactly the parameters it sets (the journal loader accepts no other).
  bool owns_value(std::string_view path) const override {
    for (const auto& n : parameter_names())
      if (path == paths::zswap_param(n)) return true;
    return false;
  }

  void plan_system(const SystemSpec& spec, PlanContext& ctx) const override {
    const auto& z = spec.zswap;
    const auto& obs = ctx.state_as<Observed>().state;
    std::map<std::string, std::string> want;
    const auto& compressors = z.compressors;
    if (z.enabled) want["enabled"] = bool_value(*z.enabled);
    if (z.max_pool_percent) want["max_pool_percent"] = std::to_string(*z.max_pool_percent);
    if (z.accept_threshold_percent)
      want["accept_threshold_percent"] = std::to_string(*z.accept_threshold_percent);
    if (z.shrinker_enabled) want["shrinker_enabled"] = bool_value(*z.shrinker_enabled);
    const auto& loaded = obs.compressors;
    if (!compressors.empty()) {
      std::string pick;
      for (const auto& c : compressors)
        if (std::find(loaded.begin(), loaded.end(), c) != loaded.end()) {
          pick = c;
          break;
        }
      // While zswap is off the kernel stores any name without checking it
      // and fails only when zswap is enabled, so the apply cannot rely on
      // the kernel's answer here: /proc/crypto is the list to check against.
      if (pick.empty() && !loaded.empty()) {
        ctx.error("zswap.compressor",
                  (compressors.size() == 1 ? "\"" + compressors.front() + "\" is not"
                                           : "none of " + join(compressors, ", ") + " is") +
                      " a compressor this kernel has (" + std::string(paths::proc_crypto) + ")",
                  "this kernel offers: " + join(loaded));
        return;
      }
      if (pick.empty()) {
        pick = compressors.front();  // no /proc/crypto to ask: apply will tell
      } else if (compressors.size() > 1) {
        ctx.note("zswap: compressor " + pick + " (first of " + join(compressors, ", ") +
                 " that this kernel offers: " + join(loaded) + ")");
      }
      want["compressor"] = pick;
    }
    if (want.empty()) return;
    if (!obs.present) {
      ctx.error("zswap",
                "zswap is not available on this kernel (no " + std::string(paths::zswap_parameters) + ")");
      return;
    }
    for (const auto& name : parameter_names()) {
      auto it = want.find(name);
      if (it == want.end()) continue;
      auto cur = obs.params.find(name);
      if (cur == obs.params.end()) {
        ctx.error("zswap." + name, "this kernel has no " + paths::zswap_param(name));
        continue;
      }
      value(ctx, paths::zswap_param(name), it->second, cur->second,
            name == "compressor" && !loaded.empty() ? "this kernel offers: " + join(loaded) : "");
    }
  }
};

}  // namespace

const TierKind& tier_kind() {
  static const ZswapKind k;
  return k;
}

}  // namespace tierswap::zswap
