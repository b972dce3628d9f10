// The apply's fault injection for tests: step N of every apply fails before
// it runs, as if the kernel had said EIO. Set through
// EngineOptions::before_step / ApplyOptions::before_step (unit tests) or
// tierswapd-test --test-fail-step N; the installed daemon has none.
#pragma once

#include <cerrno>
#include <cstddef>
#include <functional>
#include <string>

#include "common/result.hpp"
#include "common/step.hpp"

namespace tierswap::test {

// n <= 0: no fault (an unset hook).
inline std::function<Result<void>(std::size_t, const Step&)> fail_step(int n) {
  if (n <= 0) return {};
  return [n](std::size_t number, const Step&) -> Result<void> {
    if (number != static_cast<std::size_t>(n)) return {};
    return kernel_error(EIO, "injected fault (tierswapd-test --test-fail-step " + std::to_string(n) + ")");
  };
}

}  // namespace tierswap::test
