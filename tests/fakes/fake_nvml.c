/* A stand-in for the driver's libnvidia-ml.so.1, for unit tests of the GPU
 * signal readers on machines without a GPU. Built as libnvidia-ml.so.1 in a
 * test folder; a test loads it by path.
 *
 * Its figures come from the file $FAKE_NVML_STATE, re-read on every call
 * (so a test changes them between polls), one "key=value" a line:
 *   init=9                   nvmlInit_v2 returns 9 (default 0)
 *   count=1                  GPUs
 *   gpu0.name=NVIDIA H200    gpu0.uuid=GPU-...
 *   gpu0.total=  gpu0.free=  gpu0.used=   bytes (nvmlMemory_t)
 *   gpu0.util=37  gpu0.memutil=5  gpu0.temp=41
 *   gpu0.compute=4242:1048576,77:na   pid:bytes ("na": not available)
 *   gpu0.graphics=...
 *   gpu0.fail.<what>=<code>  <what> = handle, memory, uuid, name, util, temp,
 *                            compute, graphics: that call returns <code>
 * $FAKE_NVML_LOG, when set, gets a line per init and shutdown.
 * Built with -DFAKE_NVML_NO_V3 it exports only the _v2 process calls, as
 * drivers before R510 do.
 *
 * The process struct is declared here on its own, from NVIDIA's nvml.h,
 * rather than shared with the reader: the test then checks the reader's
 * layout against an independent one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef void* nvmlDevice_t;

typedef struct {
  unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
  unsigned int gpu, memory;
} nvmlUtilization_t;

typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t;

_Static_assert(sizeof(nvmlProcessInfo_v2_t) == 24, "nvmlProcessInfo_v2_t is 24 bytes");

#define NVML_SUCCESS 0
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_INSUFFICIENT_SIZE 7

static char* slurp(void) {
  const char* path = getenv("FAKE_NVML_STATE");
  if (!path) return NULL;
  FILE* f = fopen(path, "r");
  if (!f) return NULL;
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

/* The value of `key` (copied into out), or NULL. */
static const char* get(const char* key, char* out, size_t size) {
  const char* text = slurp();
  if (!text) return NULL;
  size_t klen = strlen(key);
  for (const char* line = text; *line;) {
    const char* end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
      size_t vlen = len - klen - 1;
      if (vlen >= size) vlen = size - 1;
      memcpy(out, line + klen + 1, vlen);
      out[vlen] = '\0';
      return out;
    }
    line += len + (end ? 1 : 0);
  }
  return NULL;
}

static unsigned long long get_num(const char* key, unsigned long long dflt) {
  char v[64];
  return get(key, v, sizeof v) ? strtoull(v, NULL, 10) : dflt;
}

static unsigned index_of(nvmlDevice_t d) {
  return (unsigned)((unsigned long)d - 1);
}

/* gpuN.fail.<what>: the code that call returns, or 0. */
static nvmlReturn_t failure(nvmlDevice_t d, const char* what) {
  char key[64];
  snprintf(key, sizeof key, "gpu%u.fail.%s", index_of(d), what);
  return (nvmlReturn_t)get_num(key, 0);
}

static void log_line(const char* what) {
  const char* path = getenv("FAKE_NVML_LOG");
  if (!path) return;
  FILE* f = fopen(path, "a");
  if (!f) return;
  fprintf(f, "%s\n", what);
  fclose(f);
}

nvmlReturn_t nvmlInit_v2(void) {
  log_line("init");
  return (nvmlReturn_t)get_num("init", 0);
}

nvmlReturn_t nvmlShutdown(void) {
  log_line("shutdown");
  return NVML_SUCCESS;
}

const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case 0:
      return "Success";
    case 2:
      return "Invalid Argument";
    case 3:
      return "Not Supported";
    case 4:
      return "Insufficient Permissions";
    case 7:
      return "Insufficient Size";
    case 9:
      return "Driver Not Loaded";
    case 15:
      return "GPU is lost";
    default:
      return "Unknown Error";
  }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = (unsigned)get_num("count", 0);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* dev) {
  if (index >= get_num("count", 0)) return NVML_ERROR_INVALID_ARGUMENT;
  *dev = (nvmlDevice_t)(unsigned long)(index + 1);
  nvmlReturn_t r = failure(*dev, "handle");
  return r;
}

static nvmlReturn_t string_of(nvmlDevice_t d, const char* what, char* out, unsigned int size) {
  nvmlReturn_t r = failure(d, what);
  if (r) return r;
  char key[64], v[256];
  snprintf(key, sizeof key, "gpu%u.%s", index_of(d), what);
  if (!get(key, v, sizeof v)) v[0] = '\0';
  if (strlen(v) + 1 > size) return NVML_ERROR_INSUFFICIENT_SIZE;
  strcpy(out, v);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char* uuid, unsigned int size) {
  return string_of(d, "uuid", uuid, size);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* name, unsigned int size) {
  return string_of(d, "name", name, size);
}

static unsigned long long gpu_num(nvmlDevice_t d, const char* what, unsigned long long dflt) {
  char key[64];
  snprintf(key, sizeof key, "gpu%u.%s", index_of(d), what);
  return get_num(key, dflt);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* m) {
  nvmlReturn_t r = failure(d, "memory");
  if (r) return r;
  m->total = gpu_num(d, "total", 0);
  m->free = gpu_num(d, "free", 0);
  m->used = gpu_num(d, "used", 0);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t* u) {
  nvmlReturn_t r = failure(d, "util");
  if (r) return r;
  u->gpu = (unsigned)gpu_num(d, "util", 0);
  u->memory = (unsigned)gpu_num(d, "memutil", 0);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int* temp) {
  nvmlReturn_t r = failure(d, "temp");
  if (r) return r;
  if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
  *temp = (unsigned)gpu_num(d, "temp", 0);
  return NVML_SUCCESS;
}

/* "pid:bytes,pid:na" -> infos; NVML's contract for a short buffer. */
static nvmlReturn_t processes(nvmlDevice_t d, const char* what, unsigned int* count,
                              nvmlProcessInfo_v2_t* infos) {
  nvmlReturn_t r = failure(d, what);
  if (r) return r;
  char key[64], v[4096];
  snprintf(key, sizeof key, "gpu%u.%s", index_of(d), what);
  nvmlProcessInfo_v2_t all[256];
  unsigned n = 0;
  if (get(key, v, sizeof v)) {
    for (char* tok = strtok(v, ","); tok && n < 256; tok = strtok(NULL, ",")) {
      char* colon = strchr(tok, ':');
      all[n].pid = (unsigned)strtoul(tok, NULL, 10);
      all[n].usedGpuMemory = (colon && strcmp(colon + 1, "na") != 0) ? strtoull(colon + 1, NULL, 10) : ~0ULL;
      all[n].gpuInstanceId = 0xFFFFFFFFu;
      all[n].computeInstanceId = 0xFFFFFFFFu;
      ++n;
    }
  }
  if (*count < n) {
    *count = n;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  if (n) memcpy(infos, all, n * sizeof all[0]);
  *count = n;
  return NVML_SUCCESS;
}

#ifndef FAKE_NVML_NO_V3
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                     nvmlProcessInfo_v2_t* infos) {
  return processes(d, "compute", count, infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                      nvmlProcessInfo_v2_t* infos) {
  return processes(d, "graphics", count, infos);
}
#endif

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int* count,
                                                     nvmlProcessInfo_v2_t* infos) {
  return processes(d, "compute", count, infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t d, unsigned int* count,
                                                      nvmlProcessInfo_v2_t* infos) {
  return processes(d, "graphics", count, infos);
}
