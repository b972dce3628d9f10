// tierswapctl reload: ask tierswapd to re-read its config and apply the
// difference (as SIGHUP does).
#include <cstdio>

#include "common/json_writer.hpp"
#include "ctl/bus_errors.hpp"
#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"

namespace tierswap::ctl {
namespace {

int run_reload(std::span<const std::string> argv) {
  auto args = parse_args("reload", argv, {"--json"});
  if (!args) return kExitUsage;
  if (args->help) {
    std::printf(
        "Usage: tierswapctl reload [--json]\n"
        "Make tierswapd re-read its config and apply only the difference. Needs root\n"
        "(or polkit's org.tierswap.manage). An invalid config changes nothing (exit 1).\n");
    return kExitOk;
  }
  if (!args->positionals.empty()) {
    std::fprintf(stderr, "tierswapctl reload: unexpected argument \"%s\"\n", args->positionals[0].c_str());
    return kExitUsage;
  }
  int rc = 0;
  auto bus = connect_or_report(&rc);
  if (!bus) return rc;
  auto r = bus->reload();
  if (args->has("--json")) {
    JsonWriter w;
    w.begin_object().key("ok").value(r.has_value());
    if (!r) w.key("error").value(r.error().name).key("message").value(r.error().message);
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  }
  if (!r) return report_call_error("reload", r.error());
  if (!args->has("--json")) std::printf("reloaded\n");
  return kExitOk;
}

const Registrar reg{{"reload", "[--json]", "re-read the config in tierswapd", &run_reload}};

}  // namespace
}  // namespace tierswap::ctl
