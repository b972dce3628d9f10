// GPU signals through NVML, loaded at run time.
//
// tierswap links no NVIDIA library: libnvidia-ml.so.1 comes with the
// driver, not with CUDA, and a machine without an NVIDIA GPU has none. It
// is dlopen()ed when first wanted; where it is absent (or its nvmlInit
// fails: no driver loaded, no device node), GPU signals are unavailable and
// the caller is told so once, with the reason.
//
//   gpu::GpuSignals gpus;                        // loads nothing yet
//   auto poll = gpus.poll({exporter_pid});       // loads NVML on first use
//   for (auto& n : poll.notices) log(n);         // each new condition once
//   if (poll.available)
//     if (auto g = gpu::select_gpu(poll.gpus, tier.gpu)) {
//       auto f = gpu::tier_figures(**g);         // -> policy::VramTierSample
//     }
//
// Cost: NVML calls go to the kernel driver; a poll() of one GPU makes
// about eight. Measured on an H200 (driver 580, persistence mode on):
// nvmlInit 10 ms, a poll 20 µs (signals_gpu_tests prints both). Without
// persistence mode nvmlInit can take seconds and calls wake the GPU: poll()
// runs nvmlInit on first use and, after a failure, at most once per
// retry_interval. Call poll() on the loop's tick (1 s), not per event; a
// helper thread where the GPU may not be in persistence mode.
//
// Threads: NVML itself is thread-safe. A GpuSignals (and an Nvml) is used
// by one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "backends/gpu/gpu_reading.hpp"
#include "common/result.hpp"

namespace tierswap::gpu {

// The driver's NVML, found through the dynamic loader's search path.
inline constexpr const char* kNvmlLibrary = "libnvidia-ml.so.1";

// One loaded and initialised NVML (nvmlInit_v2 .. nvmlShutdown).
class Nvml {
 public:
  // `library`: a soname (searched as dlopen does) or a path. Errors:
  // ENOENT "libnvidia-ml.so.1 not found (...dlerror...)"; ENOSYS when an
  // entry point every driver since 2015 has is missing; EIO when nvmlInit
  // fails, with NVML's own words ("Driver Not Loaded").
  static Result<std::unique_ptr<Nvml>> load(const std::string& library = kNvmlLibrary);
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // The file the loader found ("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1").
  [[nodiscard]] const std::string& path() const { return path_; }
  // Whether the running driver lists processes with the v3 call (else v2).
  [[nodiscard]] bool has_processes_v3() const;

  [[nodiscard]] Result<unsigned> device_count() const;
  // One GPU. Errors: the handle could not be had or its memory could not be
  // read (EIO, "nvmlDeviceGetMemoryInfo (GPU 0): GPU is lost"); any other
  // query that fails lands in GpuReading::errors and leaves its field empty.
  // `exclude`: pids whose memory is the tier's own (the exporter's).
  [[nodiscard]] Result<GpuReading> read(unsigned index, std::span<const pid_t> exclude) const;
  // Every GPU, in index order; the first GPU that cannot be read fails it.
  [[nodiscard]] Result<std::vector<GpuReading>> read_all(std::span<const pid_t> exclude) const;

  // nvmlErrorString(code) with the code: "GPU is lost (NVML error 15)".
  [[nodiscard]] std::string error_text(int code) const;

  struct Api;

 private:
  Nvml(void* handle, std::unique_ptr<Api> api, std::string path);
  void* handle_ = nullptr;
  std::unique_ptr<Api> api_;
  std::string path_;
};

struct GpuSignalsOptions {
  std::string library = kNvmlLibrary;
  // After NVML could not be loaded or initialised: try again this often
  // (a driver loaded late in boot). The reason is logged once either way.
  std::chrono::seconds retry_interval{60};
};

struct GpuPoll {
  bool available = false;          // NVML loaded and the GPUs read
  std::vector<GpuReading> gpus;    // index order; empty when unavailable
  std::string unavailable_reason;  // why not ("libnvidia-ml.so.1 not found: ...")
  // What is new since the last poll, each said once, ready to log:
  // "GPU signals unavailable: <reason>", "GPU signals: NVML (<path>), 1 GPU",
  // "GPU 0: nvmlDeviceGetTemperature: Not Supported". A condition that
  // clears and comes back is said again.
  std::vector<std::string> notices;
};

class GpuSignals {
 public:
  explicit GpuSignals(GpuSignalsOptions options = {});
  ~GpuSignals();

  // Loads NVML if it is not loaded (see retry_interval) and reads every GPU.
  // A read that fails (GPU lost) unloads NVML, so that the next poll starts
  // afresh.
  GpuPoll poll(std::span<const pid_t> exclude);

 private:
  GpuSignalsOptions options_;
  std::unique_ptr<Nvml> nvml_;
  std::optional<std::chrono::steady_clock::time_point> next_try_;
  std::string said_unavailable_;  // the reason last logged
  std::set<std::string> said_errors_;
  bool said_available_ = false;
};

}  // namespace tierswap::gpu
