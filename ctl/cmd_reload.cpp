// tierswapctl reload: ask tierswapd to re-read its config and apply the
// difference (as SIGHUP does).
#include <cstdio>

#include "common/json.hpp"
#include "ctl/bus_errors.hpp"
#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"

namespace tierswap::ctl {
namespace {

int run_reload(const CLI::App& sub, bool help, bool json) {
  if (help) {
    std::printf(
        "Usage: tierswapctl reload [--json]\n"
        "Make tierswapd re-read its config and apply only the difference. Needs root\n"
        "(or polkit's org.tierswap.manage). An invalid config changes nothing (exit 1).\n");
    return kExitOk;
  }
  if (!check_leftovers(sub)) return kExitUsage;
  int rc = 0;
  auto bus = connect_or_report(&rc);
  if (!bus) return rc;
  auto r = bus->reload();
  if (json) {
    Json j = {{"ok", r.has_value()}};
    if (!r) {
      j["error"] = r.error().name;
      j["message"] = r.error().message;
    }
    std::printf("%s\n", dump_json(j, false).c_str());
  }
  if (!r) return report_call_error("reload", r.error());
  if (!json) std::printf("reloaded\n");
  return kExitOk;
}

std::function<int()> setup_reload(CLI::App& sub) {
  return json_only_command(sub, &run_reload);
}

const Registrar reg{{"reload", "[--json]", "re-read the config in tierswapd", &setup_reload}};

}  // namespace
}  // namespace tierswap::ctl
