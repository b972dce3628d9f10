#include "backends/sysctl/sysctl_kind.hpp"

#include "backends/hostfs/paths.hpp"
#include "backends/hostfs/value_step.hpp"
#include "backends/sysctl/sysctl.hpp"

namespace tierswap::sysctl {

namespace {

struct Observed final : KindState {
  std::map<std::string, std::string> values;  // key -> value as the kernel prints it
};

class SysctlKind final : public value_step::ValueKind {
 public:
  std::string_view name() const override { return "sysctl"; }

  std::vector<Capability> probe(const HostFs& fs) const override {
    std::vector<Capability> out;
    for (const auto& k : managed_keys()) out.push_back({k, fs.exists(paths::sysctl(k)), paths::sysctl(k)});
    return out;
  }

  std::unique_ptr<KindState> observe(const HostFs& fs) const override {
    auto o = std::make_unique<Observed>();
    o->values = sysctl::observe(fs);
    return o;
  }

  // Exactly the sysctls it manages (the journal loader accepts no other).
  bool owns_value(std::string_view path) const override {
    for (const auto& k : managed_keys())
      if (path == paths::sysctl(k)) return true;
    return false;
  }

  void plan_system(const SystemSpec& spec, PlanContext& ctx) const override {
    const auto& obs = ctx.state_as<Observed>().values;
    for (const auto& [key, v] : spec.sysctl) {
      auto cur = obs.find(key);
      if (cur == obs.end()) {
        ctx.error("sysctl." + key, "this kernel has no " + paths::sysctl(key));
        continue;
      }
      value(ctx, paths::sysctl(key), std::to_string(v), cur->second);
    }
  }
};

}  // namespace

const TierKind& tier_kind() {
  static const SysctlKind k;
  return k;
}

}  // namespace tierswap::sysctl
