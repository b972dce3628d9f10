// The few NVML entry points tierswap calls, declared here because the CUDA
// toolkit tierswap builds with ships no nvml.h (it comes with the driver's
// development package, which build machines lack). Types and values as in
// NVIDIA's nvml.h (NVML API reference, "Device Queries" and "Initialization
// and Cleanup"); these are ABI-stable: NVIDIA adds _vN suffixes rather than
// change a signature or a struct.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tierswap::gpu::nvml_abi {

using nvmlReturn_t = int;
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;

inline constexpr nvmlReturn_t NVML_SUCCESS = 0;
inline constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;
inline constexpr nvmlReturn_t NVML_ERROR_INSUFFICIENT_SIZE = 7;

// nvmlDeviceGetUUID / nvmlDeviceGetName buffer sizes (the _V2 sizes).
inline constexpr unsigned NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96;
inline constexpr unsigned NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
// nvmlTemperatureSensors_t
inline constexpr int NVML_TEMPERATURE_GPU = 0;
// usedGpuMemory when the driver cannot attribute memory to the process.
inline constexpr unsigned long long NVML_VALUE_NOT_AVAILABLE = ~0ULL;

struct nvmlMemory_t {
  unsigned long long total;  // bytes
  unsigned long long free;
  unsigned long long used;
};
static_assert(sizeof(nvmlMemory_t) == 24);

struct nvmlUtilization_t {
  unsigned int gpu;     // percent of the sample period a kernel ran
  unsigned int memory;  // percent of the sample period memory was read or written
};
static_assert(sizeof(nvmlUtilization_t) == 8);

// nvmlProcessInfo_v2_t, which nvml.h also names nvmlProcessInfo_t: the
// element type of both nvmlDevice*RunningProcesses_v2 and _v3 (v3 changed
// the call's semantics, not the struct). pid at 0, usedGpuMemory at 8 (after
// padding), the MIG instance ids (0xFFFFFFFF without MIG) at 16 and 20.
// The unsuffixed v1 call uses a 16-byte struct without the ids: not used.
struct nvmlProcessInfo_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
static_assert(sizeof(nvmlProcessInfo_t) == 24);
static_assert(offsetof(nvmlProcessInfo_t, usedGpuMemory) == 8);
static_assert(offsetof(nvmlProcessInfo_t, gpuInstanceId) == 16);
static_assert(offsetof(nvmlProcessInfo_t, computeInstanceId) == 20);

extern "C" {
using nvmlInit_fn = nvmlReturn_t (*)();  // nvmlInit_v2
using nvmlShutdown_fn = nvmlReturn_t (*)();
using nvmlErrorString_fn = const char* (*)(nvmlReturn_t);
using nvmlDeviceGetCount_fn = nvmlReturn_t (*)(unsigned int*);                        // _v2
using nvmlDeviceGetHandleByIndex_fn = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);  // _v2
using nvmlDeviceGetUUID_fn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);
using nvmlDeviceGetName_fn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);
using nvmlDeviceGetMemoryInfo_fn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
// nvmlDeviceGet{Compute,Graphics}RunningProcesses_v3 and _v2: *count in:
// room in `infos`, out: entries written, or the number needed with
// NVML_ERROR_INSUFFICIENT_SIZE.
using nvmlDeviceGetRunningProcesses_fn = nvmlReturn_t (*)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_t*);
using nvmlDeviceGetUtilizationRates_fn = nvmlReturn_t (*)(nvmlDevice_t, nvmlUtilization_t*);
using nvmlDeviceGetTemperature_fn = nvmlReturn_t (*)(nvmlDevice_t, int, unsigned int*);
}

}  // namespace tierswap::gpu::nvml_abi
