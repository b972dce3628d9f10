// Advice about the expanded spec. Each warning names what to add or remove.
#include "config/checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>

namespace tierswap::config {
namespace {

constexpr const char* kAddDiskTier =
    "add e.g. { name: disk, kind: file, path: /var/swap/tierswap, size: 4G }";
constexpr std::uint64_t kGiB = 1ULL << 30;

bool has_kind(const Spec& spec, std::initializer_list<TierKind> kinds) {
  return std::any_of(spec.tiers.begin(), spec.tiers.end(), [&](const Tier& t) {
    return std::find(kinds.begin(), kinds.end(), t.kind) != kinds.end();
  });
}

SourceLoc zswap_loc(const Spec& spec) {
  auto it = spec.zswap.locs.find("enabled");
  return it != spec.zswap.locs.end() ? it->second : SourceLoc{spec.source, 0, 0};
}

// Where the profile's own tiers stand in for a missing `tiers:` list, a
// `tiers:` list the user adds replaces them: the hint says to keep them.
std::string add_disk_tier_hint(const Spec& spec) {
  if (spec.tiers_loc || spec.tiers.empty()) return kAddDiskTier;
  std::string names;
  for (const auto& t : spec.tiers) names += (names.empty() ? "\"" : ", \"") + t.name + "\"";
  return fmt::format(
      "write a tiers: list with the profile's {} tier{} and a disk tier, e.g. {{ name: disk, "
      "kind: file, path: /var/swap/tierswap, size: 4G }}: a tiers: list replaces the profile's",
      names, spec.tiers.size() == 1 ? "" : "s");
}

void warn(std::vector<Diagnostic>& out, SourceLoc at, std::string path, std::string message,
          std::string hint) {
  out.push_back(
      Diagnostic{Severity::warning, std::move(at), std::move(path), std::move(message), std::move(hint)});
}

}  // namespace

void check_combinations(const Spec& spec, const HostFacts& host, std::vector<Diagnostic>& out) {
  const bool zswap_on = spec.zswap.enabled.value_or(false);
  const bool disk = has_kind(spec, {TierKind::file, TierKind::partition});

  if (zswap_on && has_kind(spec, {TierKind::zram}))
    warn(out, zswap_loc(spec), "zswap.enabled",
         "zswap is enabled together with a zram tier: pages get compressed twice",
         "set zswap.enabled: false, or drop the zram tier");

  switch (spec.profile) {
    case Profile::server:
      if (!disk)
        warn(out, spec.profile_loc, "profile",
             "the server profile enables zswap, which needs a swap device behind it, and no file or "
             "partition tier is listed",
             kAddDiskTier);
      break;
    case Profile::db:
      if (!disk)
        warn(out, spec.profile_loc, "profile",
             "the db profile recommends a small swap on disk, and no file or partition tier is listed",
             kAddDiskTier);
      break;
    case Profile::desktop:
      if (!disk && host.ram_bytes >= 32 * kGiB)
        warn(out, spec.profile_loc, "profile",
             fmt::format("with {} GiB of RAM the desktop recipe recommends a small disk swap next to zram, "
                         "and no file or partition tier is listed",
                         host.ram_bytes / kGiB),
             add_disk_tier_hint(spec));
      break;
    default:
      break;
  }

  // Outside the server profile (which says so above), zswap with nothing
  // behind it does nothing at all.
  if (zswap_on && spec.profile != Profile::server &&
      !has_kind(spec, {TierKind::file, TierKind::partition, TierKind::vram}))
    warn(out, zswap_loc(spec), "zswap.enabled",
         "zswap is enabled but no file, partition or vram tier is listed: zswap only caches pages on their "
         "way to a swap device",
         kAddDiskTier);
}

}  // namespace tierswap::config
