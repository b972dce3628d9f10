#include "daemon/kind_registry.hpp"

#include "backends/cgroup/cgroup_kind.hpp"
#include "backends/disk/disk_kind.hpp"
#include "backends/hostfs/value_step.hpp"
#include "backends/sysctl/sysctl_kind.hpp"
#include "backends/vram/vram_kind.hpp"
#include "backends/zram/zram_kind.hpp"
#include "backends/zswap/zswap_kind.hpp"

namespace tierswap::kinds {

namespace {

// A journalled kernel value that no plug-in claims (written by another
// tierswapd version): teardown still writes its original back.
class AnyValue final : public value_step::ValueKind {
 public:
  std::string_view name() const override { return "value"; }
  std::vector<Capability> probe(const HostFs&) const override { return {}; }
};

const AnyValue& any_value() {
  static const AnyValue k;
  return k;
}

}  // namespace

const std::vector<const TierKind*>& all() {
  // One kind a line, in plan order: adding a kind adds one line here.
  // clang-format off
  static const std::vector<const TierKind*> registered = {
      &zram::tier_kind(),
      &disk::tier_kind(),
      &vram::tier_kind(),
      &zswap::tier_kind(),
      &sysctl::tier_kind(),
      &cgroup::tier_kind(),
      &any_value(),
  };
  // clang-format on
  return registered;
}

const TierKind* named(std::string_view name) {
  for (const auto* k : all())
    if (k->name() == name) return k;
  return nullptr;
}

const TierKind* for_tier(std::string_view tier_kind) {
  for (const auto* k : all())
    for (auto t : k->tier_kinds())
      if (t == tier_kind) return k;
  return nullptr;
}

const TierKind* owner_of_value(std::string_view path) {
  for (const auto* k : all())
    if (k->owns_value(path)) return k;
  return nullptr;
}

const TierKind& for_value(std::string_view path) {
  const auto* k = owner_of_value(path);
  return k ? *k : any_value();
}

}  // namespace tierswap::kinds
