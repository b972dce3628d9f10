// The config's `policy:` settings (config/policy_settings.hpp) as the
// policy engine's PolicySpec (policy/decide.hpp): MiB -> bytes, seconds ->
// ms. One conversion for the daemon and `tierswapctl simulate`.
#pragma once

#include "config/policy_settings.hpp"
#include "policy/decide.hpp"

namespace tierswap {

policy::PolicySpec to_policy_spec(const config::PolicySettings& s);

}  // namespace tierswap
