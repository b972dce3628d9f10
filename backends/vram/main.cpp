// tierswap-nbd: the VRAM tier's NBD exporter. See exporter.hpp.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string_view>
#include <vector>

#include "backends/vram/capabilities.hpp"
#include "backends/vram/exporter.hpp"

// Test builds (tierswap-nbd-testhooks) define TIERSWAP_NBD_TEST_HOOKS: they
// accept the fault injection options; the installed binary does not.
#ifdef TIERSWAP_NBD_TEST_HOOKS
constexpr bool kTestHooks = true;
#else
constexpr bool kTestHooks = false;
#endif

int main(int argc, char** argv) {
  using namespace tierswap::vram;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  auto opts = parse_command_line(args, kTestHooks);
  if (!opts) {
    std::fprintf(stderr, "tierswap-nbd: %s\n", opts.error().message.c_str());
    return kExitUsage;
  }
  if (opts->help) {
    std::fputs(usage_text(kTestHooks).c_str(), stdout);
    return kExitOk;
  }
  if (opts->version) {
    std::fputs(version_text(kTestHooks).c_str(), stdout);
    return kExitOk;
  }
  spdlog::set_pattern("tierswap-nbd[%P] %l: %v");
  // Before the store is opened or a byte served: only CAP_IPC_LOCK and
  // CAP_SYS_RESOURCE stay (capabilities.hpp).
  auto caps = keep_only_needed_capabilities();
  if (!caps) {
    spdlog::error("{}", caps.error().message);
    return kExitFailure;
  }
  for (std::string_view rest = caps->warnings; !rest.empty();) {
    const auto nl = rest.find('\n');
    spdlog::warn("{}", rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  }
  return run_exporter(*opts);
}
