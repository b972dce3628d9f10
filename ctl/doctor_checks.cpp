#include "ctl/doctor_checks.hpp"

#include <fmt/format.h>
#include <sys/types.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "backends/gpu/nvml.hpp"
#include "backends/hostfs/nvidia_params.hpp"
#include "backends/hostfs/paths.hpp"
#include "backends/power/power_supply.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "config/loader.hpp"
#include "ctl/status_view.hpp"
#include "dbus/logind.hpp"
#include "dbus/upower.hpp"
#include "policy/meminfo.hpp"
#include "policy/sleep_drain.hpp"

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

// A PCI address as sysfs writes it ("0000:01:00.0"): NVML and the NVIDIA
// driver may give the domain with eight digits ("00000000:01:00.0").
std::string pci_address(std::string a) {
  for (auto& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto colon = a.find(':');
  if (colon == std::string::npos || a.find(':', colon + 1) == std::string::npos) return a;
  unsigned domain = 0;
  if (std::sscanf(a.substr(0, colon).c_str(), "%x", &domain) != 1) return a;
  char head[16];
  std::snprintf(head, sizeof head, "%04x", domain);
  return head + a.substr(colon);
}

}  // namespace

std::vector<DisplayCard> display_cards(const HostFs& fs) {
  std::vector<DisplayCard> out;
  const std::string drm(paths::sys_class_drm);
  auto entries = fs.list(drm);
  if (!entries) return out;
  std::sort(entries->begin(), entries->end());
  for (const auto& e : *entries) {
    // "card0-HDMI-A-1": a connector of card0.
    const auto dash = e.find('-');
    if (!e.starts_with("card") || dash == std::string::npos) continue;
    if (fs.read_value(drm + "/" + e + "/status").value_or("") != "connected") continue;
    const std::string card = e.substr(0, dash);
    std::string pci;
    // cardN/device links to the PCI device; its uevent names it too.
    std::error_code ec;
    const auto link = std::filesystem::read_symlink(fs.resolve(drm + "/" + card + "/device"), ec);
    if (!ec) pci = link.filename().string();
    if (pci.empty())
      if (auto u = fs.read(drm + "/" + card + "/device/uevent")) {
        const auto at = u->find("PCI_SLOT_NAME=");
        if (at != std::string::npos) pci = u->substr(at + 14, u->find('\n', at) - at - 14);
      }
    if (pci.empty()) continue;
    pci = pci_address(pci);
    auto it = std::find_if(out.begin(), out.end(), [&](const DisplayCard& c) { return c.pci == pci; });
    if (it == out.end()) {
      out.push_back({card, pci, {}});
      it = out.end() - 1;
    }
    it->connectors.push_back(e.substr(dash + 1));
  }
  return out;
}

std::vector<NvidiaGpu> nvidia_gpus(const HostFs& fs) {
  std::vector<NvidiaGpu> out;
  auto dirs = fs.list(paths::proc_nvidia_gpus);
  if (!dirs) return out;
  std::sort(dirs->begin(), dirs->end());  // PCI order: NVML's index order
  for (const auto& d : *dirs) {
    NvidiaGpu g;
    g.pci = pci_address(d);
    if (auto info = fs.read(std::string(paths::proc_nvidia_gpus) + "/" + d + "/information")) {
      std::istringstream in(*info);
      for (std::string line; std::getline(in, line);) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = line.substr(0, colon), value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        value.erase(value.find_last_not_of(" \t") + 1);
        if (key == "Model") g.model = value;
        if (key == "GPU UUID") g.uuid = value;
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

namespace {

// The GPU a `gpu:` key names, as the exporter and the GPU reader read it:
// "" the first, digits an index (PCI order), "GPU-..." a UUID or a unique
// prefix of one.
const NvidiaGpu* gpu_for_key(const std::vector<NvidiaGpu>& gpus, const std::string& key) {
  if (gpus.empty()) return nullptr;
  if (key.empty()) return &gpus.front();
  if (std::all_of(key.begin(), key.end(), ::isdigit)) {
    const auto i = std::strtoul(key.c_str(), nullptr, 10);
    return i < gpus.size() ? &gpus[i] : nullptr;
  }
  const NvidiaGpu* found = nullptr;
  for (const auto& g : gpus)
    if (!g.uuid.empty() && g.uuid.starts_with(key)) {
      if (found) return nullptr;  // ambiguous
      found = &g;
    }
  return found;
}

// A VRAM tier that keeps pages on a GPU, as the config says it.
struct GpuTier {
  std::string name;
  std::string gpu;     // the `gpu:` key
  bool spill = false;  // `spill:` set: drains by evacuation
};

// The config's VRAM tiers that keep pages on a GPU (store: host keeps them
// in RAM). nullopt when there is no config to read.
std::optional<std::vector<GpuTier>> gpu_tiers(const HostFs& fs, std::string& source) {
  source = std::string(paths::default_config);
  auto text = fs.read(paths::default_config);
  if (!text) return std::nullopt;
  auto l = config::load_string(*text, source, config::HostFacts{1ULL << 40, 0});
  if (!l.spec) return std::nullopt;
  std::vector<GpuTier> out;
  for (const auto& t : l.spec->tiers)
    if (std::string(config::to_string(t.kind)) == "vram" && t.store != "host")
      out.push_back({t.name, t.gpu, !t.spill.empty()});
  return out;
}

// A VRAM tier on the card a display hangs on: the desktop's memory and the
// tier's compete (and the tier's reserve must leave the compositor room).
DoctorFinding check_vram_display(const HostFs& fs) {
  std::string source;
  const auto tiers = gpu_tiers(fs, source);
  if (!tiers)
    return {"vram-display", "ok", "no VRAM tier: no readable " + source + " (the embedded default has none)",
            ""};
  if (tiers->empty()) return {"vram-display", "ok", "no VRAM tier on a GPU in " + source, ""};
  const auto gpus = nvidia_gpus(fs);
  if (gpus.empty())
    return {"vram-display", "skip",
            "no NVIDIA GPU (" + std::string(paths::proc_nvidia_gpus) +
                " lists none): the VRAM tier is unavailable",
            ""};
  const auto displays = display_cards(fs);
  std::vector<std::string> warn, fine;
  for (const auto& [name, key, spill] : *tiers) {
    const NvidiaGpu* g = gpu_for_key(gpus, key);
    if (!g) {
      fine.push_back("tier " + name + ": gpu: \"" + key + "\" names no GPU here");
      continue;
    }
    const std::string what = g->pci + (g->model.empty() ? "" : " (" + g->model + ")");
    const auto d =
        std::find_if(displays.begin(), displays.end(), [&](const DisplayCard& c) { return c.pci == g->pci; });
    if (d == displays.end()) {
      fine.push_back("tier " + name + " on " + what + ", which drives no display");
      continue;
    }
    std::string conns;
    for (const auto& c : d->connectors) conns += (conns.empty() ? "" : ", ") + c;
    warn.push_back("tier " + name + " is on " + what + ", which drives a display (" + d->card + ": " + conns +
                   " connected)");
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
    return s;
  };
  if (!warn.empty())
    return {"vram-display", "warn",
            join(warn) +
                ": the desktop's own VRAM use competes with the tier, and freeing VRAM for it means "
                "evacuating the tier",
            "put the tier on a GPU without a display (gpu: its index or UUID), or set reserve: to what the "
            "desktop needs (e.g. reserve: 2G)"};
  return {"vram-display", "ok", join(fine), ""};
}

// Whether draining the VRAM tiers before sleep takes longer than logind
// waits (policy/sleep_drain.hpp): each tier's pages are those of the
// /dev/nbdN whose backend is "tierswap-NAME" in /proc/swaps; logind's
// InhibitDelayMaxUSec from the bus. nullopt when it fits or cannot be told.
std::optional<std::string> drain_too_slow(const HostFs& fs, const std::vector<GpuTier>& tiers) {
  auto delay = dbus::inhibit_delay_max({"", std::chrono::milliseconds(2000)});
  if (!delay) return std::nullopt;
  auto text = fs.read(paths::proc_swaps);
  auto areas = text ? swap::parse_proc_swaps(*text) : Result<std::vector<swap::SwapArea>>{};
  if (!areas) return std::nullopt;
  std::vector<policy::DrainTier> drain;
  for (const auto& a : *areas) {
    const std::string dev = std::filesystem::path(a.path).filename().string();
    if (!dev.starts_with("nbd")) continue;
    const auto backend = fs.read_value(paths::block_attr(dev, "backend")).value_or("");
    for (const auto& t : tiers)
      if (backend == "tierswap-" + t.name) drain.push_back({t.name, a.used_kib * 1024, t.spill, 0});
  }
  return policy::sleep_drain_warning(drain, *delay);
}

// Suspend: a VRAM tier's pages do not survive it unless the driver keeps
// video memory; tierswapd then drains the tier before sleep (a logind
// delay lock), or blocks suspend while it cannot (a block lock). The locks
// are logind's, not files: logind is asked on the system bus
// ($DBUS_SYSTEM_BUS_ADDRESS) even under --root.
DoctorFinding check_suspend(const HostFs& fs) {
  std::string source;
  const auto tiers = gpu_tiers(fs, source);
  if (!tiers || tiers->empty())
    return {"suspend", "ok", "no VRAM tier on a GPU: every tier survives suspend", ""};
  const auto preserve = read_nvidia_preserve(fs);
  if (preserve.preserve) return {"suspend", "ok", "VRAM survives suspend: " + preserve.evidence, ""};
  auto locks = dbus::list_inhibitors({"", std::chrono::milliseconds(2000)});
  if (!locks)
    return {"suspend", "skip",
            "VRAM does not survive suspend (" + preserve.evidence +
                ") and logind cannot be asked whether "
                "tierswapd guards it: " +
                locks.error().message,
            ""};
  for (const auto& l : *locks)
    if (l.who == "tierswap" && l.mode == "block")
      return {
          "suspend", "warn", "tierswapd blocks suspend: " + l.why,
          "add swap space below the VRAM tier (or wait until it holds less), or keep VRAM across suspend: "
          "NVreg_PreserveVideoMemoryAllocations=1 with nvidia-suspend.service"};
  for (const auto& l : *locks)
    if (l.who == "tierswap" && l.mode == "delay") {
      if (auto slow = drain_too_slow(fs, *tiers))
        return {"suspend", "warn", "tierswapd " + l.why + "; but " + *slow,
                "raise logind's InhibitDelayMaxSec as said, or give the tier a spill:"};
      return {"suspend", "ok", "tierswapd " + l.why, ""};
    }
  return {"suspend", "ok",
          "VRAM does not survive suspend (" + preserve.evidence +
              "); tierswapd holds no lock: no VRAM tier is up",
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
  return {check_zswap_zram(m),    check_swappiness(m),    check_oom_killer(fs, m), check_kubelet(fs, m),
          check_container(fs, m), check_mem_available(m), check_vram_display(fs),  check_gpu_signals(fs, m),
          check_power(fs),        check_suspend(fs)};
}

}  // namespace tierswap::ctl
