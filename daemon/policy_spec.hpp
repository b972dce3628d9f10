// The config's `policy:` settings (config/policy_settings.hpp) as the
// policy engine's PolicySpec (policy/decide.hpp): MiB -> bytes, seconds ->
// ms. One conversion for the daemon and `tierswapctl simulate`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/policy_settings.hpp"
#include "policy/decide.hpp"

namespace tierswap {

policy::PolicySpec to_policy_spec(const config::PolicySettings& s);

// A vram tier's `reserve:` as the config says it (config::Tier's fields).
struct TierReserveSource {
  std::string tier;
  std::string text;                    // empty: policy.reserve_mib
  std::optional<std::uint64_t> bytes;  // unset where it depends on the card ("10% of vram")
};

// Each tier's own reserve into p.tier_reserve_bytes (precedence:
// config::tier_reserve). A reserve that depends on the card's size is
// resolved against the tier's sample in `vram` (its vram_total_bytes); with
// no sample it is left out, and the rule uses policy.reserve_mib for it.
void add_tier_reserves(policy::PolicySpec& p, const std::vector<TierReserveSource>& tiers,
                       const config::PolicySettings& s, const std::vector<policy::VramTierSample>& vram);

}  // namespace tierswap
