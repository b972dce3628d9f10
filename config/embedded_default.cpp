// The config tierswapd uses when /etc/tierswap.yaml does not exist. It is
// written out as explicit YAML (not `profile: desktop`) so that what runs is
// exactly what `tierswapctl check` and the tests see, and so that a later
// change to the desktop profile does not silently change the default.
#include "config/loader.hpp"

namespace tierswap::config {

std::string_view embedded_default_yaml() {
  return R"yaml(# tierswap embedded default: the desktop recipe.
# Used when /etc/tierswap.yaml does not exist; copy it there to change it.
version: 1

sysctl:
  # Swap to zram eagerly: a compressed page in RAM is cheaper to get back
  # than a page cache page re-read from disk.
  vm.swappiness: 150
  # Read one page per swap-in: zram has no seek cost to amortise.
  vm.page-cluster: 0

tiers:
  - name: zram
    kind: zram
    # Half of RAM, at most 8 GiB.
    size: min(ram / 2, 8G)
    # Preference order: the first one this kernel offers is used.
    algorithm: [zstd, lz4, lzo-rle, lzo]
    priority: 100
)yaml";
}

}  // namespace tierswap::config
