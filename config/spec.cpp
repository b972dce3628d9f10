// Names of the schema's enumerations, shared by the loader, the planner's
// output and tierswapctl. The YAML spelling is the only spelling.
#include "config/spec.hpp"

#include <array>
#include <utility>

namespace tierswap::config {
namespace {

constexpr std::array<std::pair<Profile, const char*>, 5> kProfiles{{
    {Profile::desktop, "desktop"},
    {Profile::server, "server"},
    {Profile::db, "db"},
    {Profile::k8s_node, "k8s-node"},
    {Profile::gpu_workstation, "gpu-workstation"},
}};

constexpr std::array<std::pair<TierKind, const char*>, 4> kKinds{{
    {TierKind::zram, "zram"},
    {TierKind::file, "file"},
    {TierKind::partition, "partition"},
    {TierKind::vram, "vram"},
}};

template <class E, std::size_t N>
std::optional<E> lookup(const std::array<std::pair<E, const char*>, N>& table, std::string_view name) {
  for (const auto& [value, text] : table)
    if (name == text) return value;
  return std::nullopt;
}

}  // namespace

const char* to_string(Profile p) {
  for (const auto& [value, text] : kProfiles)
    if (value == p) return text;
  return "none";
}

const char* to_string(TierKind k) {
  for (const auto& [value, text] : kKinds)
    if (value == k) return text;
  return "?";
}

const char* to_string(RecompressWhen w) {
  return w == RecompressWhen::huge ? "huge" : "idle";
}

std::optional<Profile> profile_from_string(std::string_view name) {
  return lookup(kProfiles, name);
}

std::optional<TierKind> tier_kind_from_string(std::string_view name) {
  return lookup(kKinds, name);
}

std::optional<RecompressWhen> recompress_when_from_string(std::string_view name) {
  if (name == "idle") return RecompressWhen::idle;
  if (name == "huge") return RecompressWhen::huge;
  return std::nullopt;
}

}  // namespace tierswap::config
