#include "backends/gpu/gpu_reading.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "common/byte_format.hpp"
#include "common/refusal.hpp"

namespace tierswap::gpu {

namespace {

std::string list_gpus(const std::vector<GpuReading>& gpus) {
  std::string s;
  for (const auto& g : gpus) {
    if (!s.empty()) s += ", ";
    s += std::to_string(g.index) + " " + (g.uuid.empty() ? "(no UUID)" : g.uuid);
  }
  return s.empty() ? "none" : s;
}

}  // namespace

Result<const GpuReading*> select_gpu(const std::vector<GpuReading>& gpus, std::string_view key) {
  const std::string k(key);
  if (gpus.empty()) return fail(ENODEV, "gpu: \"" + k + "\": NVML reports no GPU");
  if (key.empty()) return &gpus.front();
  if (key.starts_with("GPU-")) {
    const GpuReading* found = nullptr;
    for (const auto& g : gpus) {
      if (!g.uuid.starts_with(key)) continue;
      if (found)
        return refusal(ErrorKind::invalid_config, EINVAL,
                       "gpu: \"" + k + "\" matches more than one GPU (" + list_gpus(gpus) + ")");
      found = &g;
    }
    if (!found)
      return fail(ENODEV, "gpu: \"" + k + "\": no GPU has this UUID (there are: " + list_gpus(gpus) + ")");
    return found;
  }
  if (!std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isdigit(c); }) || key.size() > 9)
    return refusal(ErrorKind::invalid_config, EINVAL,
                   "gpu: \"" + k + "\" is not a GPU index or UUID (try 0, or GPU-... from nvidia-smi -L)");
  const unsigned idx = static_cast<unsigned>(std::stoul(k));
  for (const auto& g : gpus)
    if (g.index == idx) return &g;
  return fail(ENODEV, "gpu: \"" + k + "\": no GPU with this index (there are: " + list_gpus(gpus) + ")");
}

std::string describe(const GpuReading& g) {
  std::string s = "GPU " + std::to_string(g.index) + " (" + (g.name.empty() ? "unnamed" : g.name);
  if (!g.uuid.empty()) s += ", " + g.uuid;
  s += "): " + format_bytes(g.free_bytes) + " free of " + format_bytes(g.total_bytes);
  if (!g.processes_known) {
    s += ", processes unknown";
  } else if (g.foreign.empty()) {
    s += ", no other process";
  } else {
    s += ", " + format_bytes(g.foreign_bytes) + " in " + std::to_string(g.foreign.size()) + " other process" +
         (g.foreign.size() == 1 ? "" : "es");
    if (g.foreign_unattributed) s += " (" + std::to_string(g.foreign_unattributed) + " without a figure)";
  }
  if (g.utilization_percent) s += ", " + std::to_string(*g.utilization_percent) + "% busy";
  if (g.temperature_c) s += ", " + std::to_string(*g.temperature_c) + " C";
  return s;
}

}  // namespace tierswap::gpu
