// tierswapctl doctor: looks for the known traps on this machine (or on
// --root DIR) and says what to do. Reads the machine directly; needs no daemon.
#include <cstdio>

#include "common/json.hpp"
#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "ctl/doctor_checks.hpp"

namespace tierswap::ctl {
namespace {

struct DoctorArgs {
  std::string root = "/";
  bool json = false;
};

int run_doctor_cmd(const CLI::App& sub, bool help, const DoctorArgs& args) {
  if (help) {
    std::printf(
        "Usage: tierswapctl doctor [--root DIR] [--json]\n"
        "Look for the known traps: zswap and zram both on, low swappiness with a fast\n"
        "tier, a desktop without earlyoom/systemd-oomd, kubelet with failSwapOn and swap,\n"
        "a container whose memory limit differs from MemTotal, low MemAvailable, a VRAM\n"
        "tier on a GPU that drives a display. Also shows what the policy engine sees:\n"
        "the GPUs through NVML and AC or battery (UPower, else /sys/class/power_supply).\n"
        "Exit 0: no trap found; 1: at least one.\n\n"
        "  --root DIR   read /proc, /sys, /etc under DIR (a fake tree) instead of /\n"
        "  --json       print the findings as a JSON array\n");
    return kExitOk;
  }
  if (!check_leftovers(sub)) return kExitUsage;
  const HostFs fs(args.root);
  const auto findings = run_doctor(fs);
  bool trap = false;
  for (const auto& f : findings) trap = trap || f.status == "warn";
  if (args.json) {
    Json doc = Json::array();
    for (const auto& f : findings) {
      Json j = {{"check", f.id}, {"status", f.status}, {"summary", f.summary}};
      if (!f.fix.empty()) j["fix"] = f.fix;
      doc.push_back(std::move(j));
    }
    std::fputs(dump_json(doc, true).c_str(), stdout);
  } else {
    for (const auto& f : findings) {
      std::printf("%-5s %-16s %s\n", f.status.c_str(), f.id.c_str(), f.summary.c_str());
      if (!f.fix.empty()) std::printf("%-22s fix: %s\n", "", f.fix.c_str());
    }
  }
  return trap ? kExitFailed : kExitOk;
}

std::function<int()> setup_doctor(CLI::App& sub) {
  auto help = own_help(sub);
  auto args = std::make_shared<DoctorArgs>();
  sub.add_option("--root", args->root);
  sub.add_flag("--json", args->json);
  return [&sub, help, args] { return run_doctor_cmd(sub, *help, *args); };
}

const Registrar reg{{"doctor", "[--root DIR]", "look for known swap setup traps", &setup_doctor}};

}  // namespace
}  // namespace tierswap::ctl
