// tierswapctl status: the waterfall, pressure, swap rates and GPUs, from the
// daemon (GetStatus). --json prints the daemon's document unchanged.
#include <algorithm>
#include <cstdio>

#include "ctl/bus_errors.hpp"
#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "ctl/status_view.hpp"
#include "ctl/terminal_width.hpp"
#include "dbus/status_json.hpp"

namespace tierswap::ctl {
namespace {

int run_status(const CLI::App& sub, bool help, bool json_out) {
  if (help) {
    std::printf(
        "Usage: tierswapctl status [--json]\n"
        "Show the swap tiers in priority order (tier, kind, device, priority, size,\n"
        "used, compression ratio, state), memory and I/O pressure, swap rates and GPUs.\n\n"
        "  --json   print the status document (fields in tierswapctl(8), STATUS JSON)\n");
    return kExitOk;
  }
  if (!check_leftovers(sub)) return kExitUsage;
  int rc = 0;
  auto bus = connect_or_report(&rc);
  if (!bus) return rc;
  auto json = bus->get_status_json();
  if (!json) return report_call_error("status", json.error());
  if (json_out) {
    std::printf("%s\n", json->c_str());
    return kExitOk;
  }
  auto st = dbus::status_from_json(*json);
  if (!st) {
    std::fprintf(stderr, "tierswapctl status: the daemon sent a status this version cannot read: %s\n",
                 st.error().message.c_str());
    return kExitFailed;
  }
  std::fputs(render_status(*st, std::min(terminal_columns(), 80)).c_str(), stdout);
  return kExitOk;
}

std::function<int()> setup_status(CLI::App& sub) {
  return json_only_command(sub, &run_status);
}

const Registrar reg{{"status", "[--json]", "show tiers, pressure and swap rates", &setup_status}};

}  // namespace
}  // namespace tierswap::ctl
