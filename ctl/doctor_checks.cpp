#include "ctl/doctor_checks.hpp"

#include <fmt/format.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include "backends/gpu/nvml.hpp"
#include "backends/hostfs/paths.hpp"
#include "backends/power/power_supply.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "ctl/status_view.hpp"
#include "dbus/upower.hpp"
#include "policy/meminfo.hpp"

namespace tierswap::ctl {

namespace {

// What the checks need to know, read once.
struct Machine {
  std::vector<std::string> swaps;  // device/file names from /proc/swaps
  bool zswap_on = false;
  std::optional<long long> swappiness;
  std::optional<policy::Meminfo> meminfo;
  std::set<std::string> comms;  // process names
  std::vector<std::string> kubelet_cmdlines;
  std::vector<pid_t> exporter_pids;  // tierswap-nbd: its VRAM is the tier's, not foreign
};

std::string pid_file(const std::string& pid, const char* file) {
  return std::string(paths::proc_dir) + "/" + pid + "/" + file;
}

Machine observe(const HostFs& fs) {
  Machine m;
  if (auto t = fs.read(paths::proc_swaps))
    if (auto areas = swap::parse_proc_swaps(*t))
      for (auto& a : *areas) m.swaps.push_back(std::move(a.path));
  if (auto z = fs.read_value(paths::zswap_param("enabled"))) m.zswap_on = *z == "Y" || *z == "1";
  if (auto s = fs.read_int(paths::sysctl("vm.swappiness"))) m.swappiness = *s;
  if (auto t = fs.read(paths::proc_meminfo))
    if (auto mi = policy::parse_meminfo(*t)) m.meminfo = std::move(*mi);
  if (auto pids = fs.list(paths::proc_dir)) {
    for (const auto& pid : *pids) {
      if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
      auto comm = fs.read_value(pid_file(pid, "comm"));
      if (!comm) continue;
      m.comms.insert(*comm);
      if (*comm == "tierswap-nbd") m.exporter_pids.push_back(static_cast<pid_t>(std::atol(pid.c_str())));
      if (*comm == "kubelet") {
        if (auto c = fs.read(pid_file(pid, "cmdline"))) {
          std::string cl = *c;
          std::replace(cl.begin(), cl.end(), '\0', ' ');
          m.kubelet_cmdlines.push_back(cl);
        }
      }
    }
  }
  return m;
}

bool is_zram(const std::string& dev) {
  return dev.rfind("/dev/zram", 0) == 0;
}

DoctorFinding check_zswap_zram(const Machine& m) {
  const bool zram = std::any_of(m.swaps.begin(), m.swaps.end(), is_zram);
  if (m.zswap_on && zram) {
    return {"zswap-zram", "warn", "zswap and zram swap are both on: pages get compressed twice",
            "turn one off: zswap: {enabled: false} in /etc/tierswap.yaml (keep zram), or drop the zram tier"};
  }
  return {"zswap-zram", "ok",
          m.zswap_on ? "zswap is on, no zram swap"
                     : (zram ? "zram swap is on, zswap is off" : "neither zswap nor zram is on"),
          ""};
}

DoctorFinding check_swappiness(const Machine& m) {
  const bool zram = std::any_of(m.swaps.begin(), m.swaps.end(), is_zram);
  if (!m.swappiness) return {"swappiness", "skip", "vm.swappiness could not be read", ""};
  if (!zram && !m.zswap_on) {
    return {"swappiness", "ok", fmt::format("vm.swappiness is {}; no fast tier (zram/zswap)", *m.swappiness),
            ""};
  }
  const char* tier = zram ? "zram swap" : "zswap";
  if (*m.swappiness < 100) {
    return {
        "swappiness", "warn",
        fmt::format(
            "vm.swappiness is {} while {} is on: the kernel drops page cache instead of using the fast tier",
            *m.swappiness, tier),
        "set sysctl: {vm.swappiness: 150} in /etc/tierswap.yaml (100 to 180 suits compressed swap)"};
  }
  return {"swappiness", "ok", fmt::format("vm.swappiness is {} with {}", *m.swappiness, tier), ""};
}

DoctorFinding check_oom_killer(const HostFs& fs, const Machine& m) {
  static const char* desktop_procs[] = {
      "gnome-shell", "plasmashell", "kwin_wayland",  "kwin_x11", "Xorg",   "Xwayland", "gdm",         "gdm3",
      "sddm",        "lightdm",     "xfce4-session", "sway",     "weston", "cinnamon", "mate-session"};
  std::string desktop;
  for (const char* p : desktop_procs)
    if (m.comms.count(p)) {
      desktop = p;
      break;
    }
  if (desktop.empty() && fs.exists("/etc/systemd/system/display-manager.service"))
    desktop = "display-manager.service";
  if (desktop.empty())
    return {"oom-killer", "ok", "not a desktop (no display manager or desktop shell found)", ""};
  for (const char* p : {"earlyoom", "systemd-oomd", "nohang", "oomd"})
    if (m.comms.count(p))
      return {"oom-killer", "ok", fmt::format("desktop ({}) with {} running", desktop, p), ""};
  for (const char* unit : {"/etc/systemd/system/multi-user.target.wants/earlyoom.service",
                           "/etc/systemd/system/multi-user.target.wants/systemd-oomd.service",
                           "/etc/systemd/system/dbus-org.freedesktop.oom1.service"}) {
    if (fs.exists(unit)) {
      return {"oom-killer", "ok",
              fmt::format("desktop ({}) with {} enabled (not running now)", desktop, unit), ""};
    }
  }
  return {
      "oom-killer", "warn",
      fmt::format("desktop ({}) without earlyoom or systemd-oomd: with swap, a runaway program can make the "
                  "desktop thrash for minutes before the kernel's OOM killer acts",
                  desktop),
      "install and enable one: apt install earlyoom, or systemctl enable --now systemd-oomd"};
}

DoctorFinding check_kubelet(const HostFs& fs, const Machine& m) {
  const std::string config = "/var/lib/kubelet/config.yaml";
  const bool running = m.comms.count("kubelet") != 0;
  const bool configured = fs.exists(config);
  if (!running && !configured) return {"kubelet-swap", "ok", "no kubelet", ""};
  // failSwapOn defaults to true; the flag overrides the config file.
  bool fail_swap_on = true;
  std::string where = "default";
  if (auto t = fs.read(config)) {
    auto pos = t->find("failSwapOn:");
    if (pos != std::string::npos) {
      auto v = t->substr(pos + 11, t->find('\n', pos) - pos - 11);
      v.erase(0, v.find_first_not_of(" \t"));
      fail_swap_on = v.rfind("false", 0) != 0;
      where = config;
    }
  }
  for (const auto& cl : m.kubelet_cmdlines) {
    if (cl.find("--fail-swap-on=false") != std::string::npos)
      fail_swap_on = false, where = "--fail-swap-on=false";
    if (cl.find("--fail-swap-on=true") != std::string::npos)
      fail_swap_on = true, where = "--fail-swap-on=true";
  }
  const bool swap = !m.swaps.empty() || (m.meminfo && m.meminfo->swap_total() > 0);
  if (fail_swap_on && swap) {
    return {"kubelet-swap", "warn",
            fmt::format("kubelet has failSwapOn ({}) and swap is on: kubelet refuses to start", where),
            "set failSwapOn: false and memorySwap: {swapBehavior: LimitedSwap} in " + config +
                ", or use profile: k8s-node (no swap)"};
  }
  return {"kubelet-swap", "ok",
          fail_swap_on ? "kubelet has failSwapOn and there is no swap"
                       : "kubelet allows swap (failSwapOn: false)",
          ""};
}

DoctorFinding check_container(const HostFs& fs, const Machine& m) {
  auto max = fs.read_value(paths::cgroup_memory_max);
  if (!max || *max == "max")
    return {"container-limit", "ok", "no memory limit on this cgroup namespace's root", ""};
  const long long limit = std::atoll(max->c_str());
  const std::uint64_t total = m.meminfo ? m.meminfo->mem_total() : 0;
  if (limit > 0 && total > 0 && static_cast<std::uint64_t>(limit) < total) {
    return {
        "container-limit", "warn",
        fmt::format("inside a container limited to {} (/sys/fs/cgroup/memory.max), but MemTotal (what free "
                    "shows) is {}: sizes in % of RAM use the wrong number",
                    format_bytes_short(static_cast<std::uint64_t>(limit)), format_bytes_short(total)),
        "give tier sizes in bytes (e.g. size: 2G), or run tierswapd on the host"};
  }
  return {"container-limit", "ok",
          fmt::format("cgroup limit {} is not below MemTotal", format_bytes_short(limit)), ""};
}

DoctorFinding check_mem_available(const Machine& m) {
  if (!m.meminfo || !m.meminfo->get("MemAvailable"))
    return {"mem-available", "skip", "MemAvailable unknown", ""};
  const auto total = m.meminfo->mem_total(), avail = m.meminfo->mem_available();
  const double pct = total ? 100.0 * double(avail) / double(total) : 0;
  if (pct < 10) {
    return {
        "mem-available", "warn",
        fmt::format("MemAvailable is {} ({:.1f}% of {}): the machine is short of memory now",
                    format_bytes_short(avail), pct, format_bytes_short(total)),
        "find the biggest users (ps aux --sort=-rss | head) and check the swap tiers: tierswapctl status"};
  }
  return {"mem-available", "ok",
          fmt::format("MemAvailable is {} ({:.0f}% of {})", format_bytes_short(avail), pct,
                      format_bytes_short(total)),
          ""};
}

// What the policy engine would see of the GPUs. NVML cannot be pointed at
// a fake tree, so under --root it is not asked.
DoctorFinding check_gpu_signals(const HostFs& fs, const Machine& m) {
  if (!fs.is_real_root())
    return {"gpu-signals", "skip", "not checked under --root: NVML reports this machine's GPUs", ""};
  gpu::GpuSignals gpus;
  const auto poll = gpus.poll(m.exporter_pids);
  if (!poll.available) return {"gpu-signals", "skip", "unavailable: " + poll.unavailable_reason, ""};
  std::string s =
      "NVML found, " + std::to_string(poll.gpus.size()) + (poll.gpus.size() == 1 ? " GPU" : " GPUs");
  for (const auto& g : poll.gpus) s += "; " + gpu::describe(g);
  return {"gpu-signals", "ok", s, ""};
}

// AC or battery as the policy engine reads it: UPower where it is on the
// system bus, else /sys/class/power_supply (always that under --root).
DoctorFinding check_power(const HostFs& fs) {
  std::string why_not_upower;
  if (fs.is_real_root()) {
    auto up = dbus::UPowerClient::connect({"", std::chrono::milliseconds(2000)});
    if (up) {
      if (auto b = (*up)->on_battery())
        return {"power", "ok", std::string(*b ? "battery" : "AC") + "; source: UPower", ""};
    } else {
      why_not_upower = up.error().message;
    }
  }
  const auto r = power::read_power_supply(fs);
  return {
      "power", "ok",
      power::describe(r) + "; source: sysfs" + (why_not_upower.empty() ? "" : " (" + why_not_upower + ")"),
      ""};
}

}  // namespace

std::vector<DoctorFinding> run_doctor(const HostFs& fs) {
  const Machine m = observe(fs);
  return {check_zswap_zram(m),
          check_swappiness(m),
          check_oom_killer(fs, m),
          check_kubelet(fs, m),
          check_container(fs, m),
          check_mem_available(m),
          {"vram-display", "skip", "not checked: the VRAM tier does not exist yet", ""},
          check_gpu_signals(fs, m),
          check_power(fs)};
}

}  // namespace tierswap::ctl
