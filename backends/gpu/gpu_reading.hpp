// What one GPU looks like to the policy engine, as NVML reports it, and the
// pure functions over it: which GPU a VRAM tier's `gpu:` key names, and the
// three figures a policy::VramTierSample takes from it. No I/O here (the
// reading itself is nvml.hpp's).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace tierswap::gpu {

// A process holding memory on the card (NVML's compute and graphics lists
// merged by pid).
struct GpuProcess {
  pid_t pid = 0;
  // Bytes it holds; nullopt where NVML says "not available" (a driver that
  // cannot attribute memory, e.g. under some virtualisation).
  std::optional<std::uint64_t> used_bytes;
  bool compute = false;   // listed by nvmlDeviceGetComputeRunningProcesses
  bool graphics = false;  // listed by nvmlDeviceGetGraphicsRunningProcesses
};

struct GpuReading {
  unsigned index = 0;  // NVML's index (nvidia-smi's; PCI bus order)
  std::string uuid;    // "GPU-8f1c..." ("" when NVML could not say)
  std::string name;    // "NVIDIA H200"

  // nvmlDeviceGetMemoryInfo, bytes. `used` includes what the driver
  // reserves for itself, so used + free == total.
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
  std::uint64_t used_bytes = 0;

  // Processes other than the excluded pids (the exporter's), and theirs.
  // processes_known is false when NVML could not list them (see errors):
  // then both lists are empty and foreign_bytes is 0.
  bool processes_known = false;
  std::vector<GpuProcess> foreign;
  std::vector<GpuProcess> own;
  std::uint64_t foreign_bytes = 0;    // sum of foreign[].used_bytes that NVML gave
  std::uint64_t own_bytes = 0;        // sum of own[].used_bytes that NVML gave
  unsigned foreign_unattributed = 0;  // foreign processes whose bytes NVML did not give

  // nvmlDeviceGetUtilizationRates: percent of the last sample period
  // (1/6 s to 1 s, by product) in which a kernel ran / memory was read or
  // written, for the whole device: the exporter's own work included.
  std::optional<unsigned> utilization_percent;
  std::optional<unsigned> memory_utilization_percent;
  // nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU), degrees C.
  std::optional<unsigned> temperature_c;

  // Queries that failed on this GPU, each "nvmlDeviceGetX: <nvmlErrorString>".
  // A query the GPU does not support (NVML_ERROR_NOT_SUPPORTED) is not an
  // error: its field stays empty.
  std::vector<std::string> errors;

  // "GPU busy" as the policy may count it: the device utilisation when a
  // process other than the exporter holds a context on the card, else 0.
  // The exporter's poller keeps an SM busy for about 10 ms after its last
  // request, and NVML's utilisation cannot be split by process without
  // per-process sampling, so a card on which only the exporter has a
  // context is never "busy". With a foreign context present the figure is
  // an upper bound (it includes the exporter's share).
  [[nodiscard]] unsigned foreign_busy_percent() const {
    return foreign.empty() ? 0 : utilization_percent.value_or(0);
  }
};

// The VRAM tier's figures in policy::VramTierSample's terms (the daemon
// copies them field by field; backends/ does not include policy/).
struct TierGpuFigures {
  std::uint64_t vram_free_bytes = 0;
  std::uint64_t vram_total_bytes = 0;
  std::uint64_t foreign_vram_bytes = 0;
};

[[nodiscard]] inline TierGpuFigures tier_figures(const GpuReading& g) {
  return {g.free_bytes, g.total_bytes, g.foreign_bytes};
}

// The GPU a VRAM tier's `gpu:` key names, as tierswap-nbd's CUDA store
// reads the same key: "" the first GPU; digits an index; "GPU-..." a UUID
// or a unique prefix of one. Errors (ENODEV / EINVAL) name the key and list
// the GPUs there are. `gpus` is what NVML reported, in index order.
//
// Index caveat: NVML numbers GPUs in PCI bus order, CUDA by default fastest
// first (CUDA_DEVICE_ORDER); on machines with different GPU models the two
// can disagree, and a UUID names the same card in both.
Result<const GpuReading*> select_gpu(const std::vector<GpuReading>& gpus, std::string_view key);

// "GPU 0 (NVIDIA H200, GPU-8f1c...): 139.8 GiB free of 140.4 GiB, foreign
// 2.1 GiB in 2 processes, 3% busy, 41 C": a line for logs and doctor.
std::string describe(const GpuReading& g);

}  // namespace tierswap::gpu
