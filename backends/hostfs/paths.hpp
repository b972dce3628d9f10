// The kernel paths tierswap touches, in one place. Everything else asks for
// them here and reads or writes them through HostFs.
#pragma once

#include <string>
#include <string_view>

namespace tierswap::paths {

inline constexpr std::string_view proc_swaps = "/proc/swaps";
inline constexpr std::string_view proc_meminfo = "/proc/meminfo";
inline constexpr std::string_view proc_vmstat = "/proc/vmstat";
inline constexpr std::string_view proc_mounts = "/proc/self/mounts";
inline constexpr std::string_view proc_pressure_memory = "/proc/pressure/memory";
inline constexpr std::string_view proc_pressure_io = "/proc/pressure/io";
inline constexpr std::string_view proc_cpuinfo = "/proc/cpuinfo";
inline constexpr std::string_view proc_pressure_cpu = "/proc/pressure/cpu";
inline constexpr std::string_view proc_self_oom_score_adj = "/proc/self/oom_score_adj";

inline constexpr std::string_view sys_block = "/sys/block";
inline constexpr std::string_view zram_hot_add = "/sys/class/zram-control/hot_add";
inline constexpr std::string_view zram_hot_remove = "/sys/class/zram-control/hot_remove";
inline constexpr std::string_view zram_control = "/sys/class/zram-control";
inline constexpr std::string_view zswap_parameters = "/sys/module/zswap/parameters";
inline constexpr std::string_view dev_disk_by_uuid = "/dev/disk/by-uuid";
inline constexpr std::string_view dev_disk_by_label = "/dev/disk/by-label";
// Registered crypto algorithms: the compressors zswap can use are the
// "compression"/"scomp"/"acomp" entries here (zswap has no list of its own).
inline constexpr std::string_view proc_crypto = "/proc/crypto";
// Process directories (/proc/<pid>/comm, cmdline) and the cgroup v2 memory
// limit of the cgroup namespace we run in (tierswapctl doctor).
inline constexpr std::string_view proc_dir = "/proc";
// The nbd driver (the VRAM tier's way into the kernel): its module directory
// exists when it is loaded or built in. NVIDIA GPUs the driver found.
inline constexpr std::string_view sys_module_nbd = "/sys/module/nbd";
inline constexpr std::string_view proc_nvidia_gpus = "/proc/driver/nvidia/gpus";
// The NVIDIA driver's module parameters ("Name: value" lines):
// PreserveVideoMemoryAllocations says whether VRAM survives suspend.
inline constexpr std::string_view proc_nvidia_params = "/proc/driver/nvidia/params";
// DRM devices: cardN/device links to the PCI device, cardN-CONNECTOR/status
// says "connected" when a display hangs on it (the GPU drives a display).
inline constexpr std::string_view sys_class_drm = "/sys/class/drm";
inline constexpr std::string_view cgroup_memory_max = "/sys/fs/cgroup/memory.max";
// Power supplies (AC adapters, batteries): AC or battery where UPower is absent.
inline constexpr std::string_view sys_power_supply = "/sys/class/power_supply";
// The cgroup v2 hierarchy (the cgroup kind): cgroup.controllers exists only
// in a cgroup v2 (unified) mount.
inline constexpr std::string_view sys_fs_cgroup = "/sys/fs/cgroup";
// The cgroup v1 memory hierarchy (hybrid layouts), and the kernel's list of
// controllers with whether each is enabled (the swapoff room rule reads who
// holds swap from either hierarchy).
inline constexpr std::string_view sys_fs_cgroup_memory_v1 = "/sys/fs/cgroup/memory";
inline constexpr std::string_view proc_cgroups = "/proc/cgroups";

// tierswapd's journal of what it changed (under --root).
inline constexpr std::string_view run_state_dir = "/run/tierswap";
inline constexpr std::string_view run_state_file = "/run/tierswap/state.json";
// The config tierswapd reads when --config is not given (under --root).
inline constexpr std::string_view default_config = "/etc/tierswap.yaml";

// A vram tier's exporter keeps its control socket in a runtime directory of
// its own (0700): "/run/tierswap/exporter-<tier>/control".
inline std::string exporter_runtime_dir(std::string_view tier) {
  return std::string(run_state_dir) + "/exporter-" + std::string(tier);
}
inline std::string exporter_control_socket(std::string_view tier) {
  return exporter_runtime_dir(tier) + "/control";
}

// "/sys/block/<dev>/<attr>" ("zram0", "disksize"); attr empty: the directory.
inline std::string block_attr(std::string_view dev, std::string_view attr = {}) {
  std::string p = std::string(sys_block) + "/" + std::string(dev);
  if (!attr.empty()) p += "/" + std::string(attr);
  return p;
}

// "/dev/<name>".
inline std::string dev_node(std::string_view name) {
  return "/dev/" + std::string(name);
}

// "/sys/module/zswap/parameters/<name>".
inline std::string zswap_param(std::string_view name) {
  return std::string(zswap_parameters) + "/" + std::string(name);
}

// "vm.swappiness" -> "/proc/sys/vm/swappiness".
inline std::string sysctl(std::string_view key) {
  std::string p = "/proc/sys/";
  for (char c : key) p += (c == '.') ? '/' : c;
  return p;
}

}  // namespace tierswap::paths
