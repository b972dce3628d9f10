#include "backends/gpu/nvml.hpp"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>

#include "backends/gpu/nvml_abi.hpp"
#include "common/refusal.hpp"

namespace tierswap::gpu {

using namespace nvml_abi;

struct Nvml::Api {
  nvmlInit_fn init = nullptr;
  nvmlShutdown_fn shutdown = nullptr;
  nvmlErrorString_fn error_string = nullptr;
  nvmlDeviceGetCount_fn count = nullptr;
  nvmlDeviceGetHandleByIndex_fn handle = nullptr;
  nvmlDeviceGetMemoryInfo_fn memory = nullptr;
  nvmlDeviceGetUUID_fn uuid = nullptr;                                 // optional
  nvmlDeviceGetName_fn name = nullptr;                                 // optional
  nvmlDeviceGetRunningProcesses_fn compute = nullptr;                  // optional: v3, else v2
  nvmlDeviceGetRunningProcesses_fn graphics = nullptr;                 // optional: v3, else v2
  const char* compute_fn = "nvmlDeviceGetComputeRunningProcesses_v3";  // for messages
  const char* graphics_fn = "nvmlDeviceGetGraphicsRunningProcesses_v3";
  nvmlDeviceGetUtilizationRates_fn utilization = nullptr;  // optional
  nvmlDeviceGetTemperature_fn temperature = nullptr;       // optional
};

namespace {

template <class F>
F sym(void* h, const char* name) {
  return reinterpret_cast<F>(dlsym(h, name));
}

// The first of `names` the library exports; `chosen` gets its name.
template <class F>
F sym_any(void* h, std::initializer_list<const char*> names, const char** chosen = nullptr) {
  for (const char* n : names) {
    if (auto f = sym<F>(h, n)) {
      if (chosen) *chosen = n;
      return f;
    }
  }
  return nullptr;
}

}  // namespace

Result<std::unique_ptr<Nvml>> Nvml::load(const std::string& library) {
  dlerror();
  void* h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = dlerror();
    return refusal(ErrorKind::not_found, ENOENT,
                   library + " not found (" + std::string(why ? why : "dlopen failed") +
                       "): no NVIDIA driver here, or its NVML is not installed");
  }
  auto api = std::make_unique<Api>();
  api->init = sym_any<nvmlInit_fn>(h, {"nvmlInit_v2", "nvmlInit"});
  api->shutdown = sym<nvmlShutdown_fn>(h, "nvmlShutdown");
  api->error_string = sym<nvmlErrorString_fn>(h, "nvmlErrorString");
  api->count = sym_any<nvmlDeviceGetCount_fn>(h, {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"});
  api->handle = sym_any<nvmlDeviceGetHandleByIndex_fn>(
      h, {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"});
  api->memory = sym<nvmlDeviceGetMemoryInfo_fn>(h, "nvmlDeviceGetMemoryInfo");
  for (auto [fn, name] : {std::pair{api->init != nullptr, "nvmlInit_v2"},
                          {api->shutdown != nullptr, "nvmlShutdown"},
                          {api->error_string != nullptr, "nvmlErrorString"},
                          {api->count != nullptr, "nvmlDeviceGetCount_v2"},
                          {api->handle != nullptr, "nvmlDeviceGetHandleByIndex_v2"},
                          {api->memory != nullptr, "nvmlDeviceGetMemoryInfo"}}) {
    if (!fn) {
      dlclose(h);
      return refusal(ErrorKind::unsupported, ENOSYS,
                     library + " has no " + name + ": the NVIDIA driver is too old (or this is not NVML)");
    }
  }
  api->uuid = sym<nvmlDeviceGetUUID_fn>(h, "nvmlDeviceGetUUID");
  api->name = sym<nvmlDeviceGetName_fn>(h, "nvmlDeviceGetName");
  api->compute = sym_any<nvmlDeviceGetRunningProcesses_fn>(
      h, {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2"},
      &api->compute_fn);
  api->graphics = sym_any<nvmlDeviceGetRunningProcesses_fn>(
      h, {"nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v2"},
      &api->graphics_fn);
  api->utilization = sym<nvmlDeviceGetUtilizationRates_fn>(h, "nvmlDeviceGetUtilizationRates");
  api->temperature = sym<nvmlDeviceGetTemperature_fn>(h, "nvmlDeviceGetTemperature");

  std::string path = library;
  if (link_map* lm = nullptr; dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && *lm->l_name)
    path = lm->l_name;

  if (const nvmlReturn_t r = api->init(); r != NVML_SUCCESS) {
    const char* s = api->error_string(r);
    std::string msg =
        path + ": nvmlInit_v2: " + (s ? s : "unknown error") + " (NVML error " + std::to_string(r) + ")";
    dlclose(h);
    return refusal(ErrorKind::failed, EIO, std::move(msg));
  }
  return std::unique_ptr<Nvml>(new Nvml(h, std::move(api), std::move(path)));
}

Nvml::Nvml(void* handle, std::unique_ptr<Api> api, std::string path)
    : handle_(handle), api_(std::move(api)), path_(std::move(path)) {}

Nvml::~Nvml() {
  api_->shutdown();
  dlclose(handle_);
}

bool Nvml::has_processes_v3() const {
  return api_->compute && std::string_view(api_->compute_fn).ends_with("_v3");
}

std::string Nvml::error_text(int code) const {
  const char* s = api_->error_string(code);
  return std::string(s ? s : "unknown error") + " (NVML error " + std::to_string(code) + ")";
}

Result<unsigned> Nvml::device_count() const {
  unsigned n = 0;
  if (const nvmlReturn_t r = api_->count(&n); r != NVML_SUCCESS)
    return refusal(ErrorKind::failed, EIO, "nvmlDeviceGetCount_v2: " + error_text(r));
  return n;
}

namespace {

// One of the process lists; nullopt (and an error) when NVML could not say.
std::optional<std::vector<nvmlProcessInfo_t>> list_processes(const Nvml& nvml,
                                                             nvmlDeviceGetRunningProcesses_fn fn,
                                                             const char* fn_name, nvmlDevice_t dev,
                                                             std::vector<std::string>& errors) {
  std::vector<nvmlProcessInfo_t> infos(16);
  // Processes come and go between the calls: grow a few times, then give up.
  for (int attempt = 0; attempt < 4; ++attempt) {
    unsigned n = static_cast<unsigned>(infos.size());
    const nvmlReturn_t r = fn(dev, &n, infos.data());
    if (r == NVML_SUCCESS) {
      infos.resize(std::min<std::size_t>(n, infos.size()));
      return infos;
    }
    if (r != NVML_ERROR_INSUFFICIENT_SIZE) {
      if (r != NVML_ERROR_NOT_SUPPORTED) errors.push_back(std::string(fn_name) + ": " + nvml.error_text(r));
      return std::nullopt;
    }
    infos.resize(std::max<std::size_t>(n, infos.size()) * 2);
  }
  errors.push_back(std::string(fn_name) + ": the list kept growing while it was read");
  return std::nullopt;
}

}  // namespace

Result<GpuReading> Nvml::read(unsigned index, std::span<const pid_t> exclude) const {
  const std::string gpu = " (GPU " + std::to_string(index) + ")";
  nvmlDevice_t dev = nullptr;
  if (const nvmlReturn_t r = api_->handle(index, &dev); r != NVML_SUCCESS)
    return refusal(ErrorKind::failed, EIO, "nvmlDeviceGetHandleByIndex_v2" + gpu + ": " + error_text(r));
  GpuReading g;
  g.index = index;
  nvmlMemory_t mem{};
  if (const nvmlReturn_t r = api_->memory(dev, &mem); r != NVML_SUCCESS)
    return refusal(ErrorKind::failed, EIO, "nvmlDeviceGetMemoryInfo" + gpu + ": " + error_text(r));
  g.total_bytes = mem.total;
  g.free_bytes = mem.free;
  g.used_bytes = mem.used;

  auto soft = [&](const char* fn, nvmlReturn_t r) {
    if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED)
      g.errors.push_back(std::string(fn) + ": " + error_text(r));
    return r == NVML_SUCCESS;
  };
  char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE > NVML_DEVICE_NAME_V2_BUFFER_SIZE
               ? NVML_DEVICE_UUID_V2_BUFFER_SIZE
               : NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
  if (api_->uuid && soft("nvmlDeviceGetUUID", api_->uuid(dev, buf, sizeof buf)))
    g.uuid.assign(buf, strnlen(buf, sizeof buf));
  buf[0] = '\0';
  if (api_->name && soft("nvmlDeviceGetName", api_->name(dev, buf, sizeof buf)))
    g.name.assign(buf, strnlen(buf, sizeof buf));
  nvmlUtilization_t util{};
  if (api_->utilization && soft("nvmlDeviceGetUtilizationRates", api_->utilization(dev, &util))) {
    g.utilization_percent = util.gpu;
    g.memory_utilization_percent = util.memory;
  }
  unsigned temp = 0;
  if (api_->temperature &&
      soft("nvmlDeviceGetTemperature", api_->temperature(dev, NVML_TEMPERATURE_GPU, &temp)))
    g.temperature_c = temp;

  // Compute and graphics lists, merged by pid (a process can be in both,
  // with the same memory figure in each).
  std::map<pid_t, GpuProcess> procs;
  bool known = api_->compute != nullptr || api_->graphics != nullptr;
  for (auto [fn, fn_name, graphics] : {std::tuple{api_->compute, api_->compute_fn, false},
                                       std::tuple{api_->graphics, api_->graphics_fn, true}}) {
    if (!fn) continue;
    auto list = list_processes(*this, fn, fn_name, dev, g.errors);
    if (!list) {
      known = false;
      continue;
    }
    for (const auto& p : *list) {
      auto& e = procs[static_cast<pid_t>(p.pid)];
      e.pid = static_cast<pid_t>(p.pid);
      (graphics ? e.graphics : e.compute) = true;
      if (p.usedGpuMemory != NVML_VALUE_NOT_AVAILABLE)
        e.used_bytes = std::max<std::uint64_t>(e.used_bytes.value_or(0), p.usedGpuMemory);
    }
  }
  g.processes_known = known;
  if (known) {
    for (auto& [pid, p] : procs) {
      const bool ours = std::find(exclude.begin(), exclude.end(), pid) != exclude.end();
      if (ours) {
        g.own_bytes += p.used_bytes.value_or(0);
        g.own.push_back(p);
      } else {
        if (p.used_bytes)
          g.foreign_bytes += *p.used_bytes;
        else
          ++g.foreign_unattributed;
        g.foreign.push_back(p);
      }
    }
  }
  return g;
}

Result<std::vector<GpuReading>> Nvml::read_all(std::span<const pid_t> exclude) const {
  auto n = device_count();
  if (!n) return std::unexpected(n.error());
  std::vector<GpuReading> out;
  out.reserve(*n);
  for (unsigned i = 0; i < *n; ++i) {
    auto g = read(i, exclude);
    if (!g) return std::unexpected(g.error());
    out.push_back(std::move(*g));
  }
  return out;
}

GpuSignals::GpuSignals(GpuSignalsOptions options) : options_(std::move(options)) {}
GpuSignals::~GpuSignals() = default;

GpuPoll GpuSignals::poll(std::span<const pid_t> exclude) {
  GpuPoll out;
  const auto now = std::chrono::steady_clock::now();
  auto unavailable = [&](const std::string& why) {
    out.unavailable_reason = why;
    if (why != said_unavailable_) out.notices.push_back("GPU signals unavailable: " + why);
    said_unavailable_ = why;
    said_available_ = false;
    said_errors_.clear();
    next_try_ = now + options_.retry_interval;
    return out;
  };
  if (!nvml_) {
    if (next_try_ && now < *next_try_) {
      out.unavailable_reason = said_unavailable_;
      return out;
    }
    auto n = Nvml::load(options_.library);
    if (!n) return unavailable(n.error().message);
    nvml_ = std::move(*n);
  }
  auto gpus = nvml_->read_all(exclude);
  if (!gpus) {
    nvml_.reset();  // the next poll (after retry_interval) loads it afresh
    return unavailable(gpus.error().message);
  }
  out.available = true;
  out.gpus = std::move(*gpus);
  if (!said_available_) {
    out.notices.push_back("GPU signals: NVML (" + nvml_->path() + "), " + std::to_string(out.gpus.size()) +
                          (out.gpus.size() == 1 ? " GPU" : " GPUs") +
                          (nvml_->has_processes_v3() ? "" : ", processes listed with the v2 calls"));
    said_available_ = true;
    said_unavailable_.clear();
    next_try_.reset();
  }
  std::set<std::string> errors;
  for (const auto& g : out.gpus)
    for (const auto& e : g.errors) errors.insert("GPU " + std::to_string(g.index) + ": " + e);
  for (const auto& e : errors)
    if (!said_errors_.count(e)) out.notices.push_back(e);
  said_errors_ = std::move(errors);
  return out;
}

}  // namespace tierswap::gpu
