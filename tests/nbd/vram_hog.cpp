// vram_hog: another program that wants the GPU's memory, for the VRAM-tier
// contention test (vram_daemon_test.cpp, label gpu). It takes device memory
// through the CUDA driver API (libcuda.so.1, opened at run time as the
// exporter's store does, so it builds without CUDA) in steps:
//
//   vram_hog --step-mib S --interval-ms I --beyond-free-mib B --leave-mib L --hold-ms H
//
// Its target is the memory free when it starts plus B MiB (memory someone
// else holds now and must give back: the VRAM tier) minus L MiB (left for
// the driver and the other processes' own needs). It allocates S MiB every
// I ms until it holds the target (the last step is what is left), holds it
// H ms, frees it and exits 0. An allocation that fails ends it with exit
// status 3 at once: the memory was not given back in time. Between steps it
// reads the device's free memory every millisecond; a rise of at least
// 16 MiB that its own steps do not explain is memory another process freed.
//
// Output, one "key value" a line on stdout, times in ns on CLOCK_MONOTONIC
// (one clock for every process of the machine):
//   free_at_start_mib N, target_mib N
//   step K at_ns T mib N free_mib F      (after each successful allocation)
//   freed_by_others at_ns T mib N        (the first rise; at most once)
//   reached at_ns T held_mib N
//   failed at_ns T step K mib N free_mib F cuda_error E
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUdeviceptr = unsigned long long;

struct Driver {
  CUresult (*init)(unsigned) = nullptr;
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*ctx_create)(CUcontext*, unsigned, CUdevice) = nullptr;
  CUresult (*mem_get_info)(std::size_t*, std::size_t*) = nullptr;
  CUresult (*mem_alloc)(CUdeviceptr*, std::size_t) = nullptr;
  CUresult (*mem_free)(CUdeviceptr) = nullptr;
  CUresult (*memset)(CUdeviceptr, unsigned char, std::size_t) = nullptr;
  CUresult (*ctx_synchronize)() = nullptr;
};

template <class F>
bool sym(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(::dlsym(lib, name));
  if (f == nullptr) std::fprintf(stderr, "vram_hog: libcuda.so.1 has no %s\n", name);
  return f != nullptr;
}

std::uint64_t now_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(t.tv_nsec);
}

long arg(int argc, char** argv, const char* name, long dflt) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
  return dflt;
}

constexpr std::size_t kMiB = 1ULL << 20;

}  // namespace

int main(int argc, char** argv) {
  const long step_mib = arg(argc, argv, "--step-mib", 4096);
  const long interval_ms = arg(argc, argv, "--interval-ms", 200);
  const long beyond_mib = arg(argc, argv, "--beyond-free-mib", 0);
  const long leave_mib = arg(argc, argv, "--leave-mib", 1024);
  const long hold_ms = arg(argc, argv, "--hold-ms", 2000);
  if (step_mib <= 0 || interval_ms < 0 || beyond_mib < 0 || leave_mib < 0 || hold_ms < 0) {
    std::fprintf(stderr, "vram_hog: bad arguments\n");
    return 2;
  }
  void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "vram_hog: %s\n", ::dlerror());
    return 2;
  }
  Driver d;
  if (!sym(lib, "cuInit", d.init) || !sym(lib, "cuDeviceGet", d.device_get) ||
      !sym(lib, "cuCtxCreate_v2", d.ctx_create) || !sym(lib, "cuMemGetInfo_v2", d.mem_get_info) ||
      !sym(lib, "cuMemAlloc_v2", d.mem_alloc) || !sym(lib, "cuMemFree_v2", d.mem_free) ||
      !sym(lib, "cuMemsetD8_v2", d.memset) || !sym(lib, "cuCtxSynchronize", d.ctx_synchronize))
    return 2;
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  std::size_t free_b = 0, total_b = 0;
  if (CUresult r = d.init(0); r != 0) {
    std::fprintf(stderr, "vram_hog: cuInit: %d\n", r);
    return 2;
  }
  if (d.device_get(&dev, 0) != 0 || d.ctx_create(&ctx, 0, dev) != 0 ||
      d.mem_get_info(&free_b, &total_b) != 0) {
    std::fprintf(stderr, "vram_hog: no context on device 0\n");
    return 2;
  }
  const long free_mib = static_cast<long>(free_b / kMiB);
  const long target_mib = free_mib + beyond_mib - leave_mib;
  std::printf("free_at_start_mib %ld\ntarget_mib %ld\n", free_mib, target_mib);
  std::fflush(stdout);

  std::vector<CUdeviceptr> held;
  long held_mib = 0;
  bool others_freed = false;
  std::size_t expected_free = free_b;  // what our own steps leave
  auto watch = [&](std::uint64_t until_ns) {
    do {
      std::size_t f = 0, t = 0;
      if (!others_freed && d.mem_get_info(&f, &t) == 0 && f >= expected_free + 16 * kMiB) {
        others_freed = true;
        std::printf("freed_by_others at_ns %llu mib %ld\n", static_cast<unsigned long long>(now_ns()),
                    static_cast<long>((f - expected_free) / kMiB));
        std::fflush(stdout);
      }
      ::usleep(1000);
    } while (now_ns() < until_ns);
  };
  for (int k = 1; held_mib < target_mib; ++k) {
    const long mib = std::min(step_mib, target_mib - held_mib);
    CUdeviceptr p = 0;
    const CUresult r = d.mem_alloc(&p, static_cast<std::size_t>(mib) * kMiB);
    const std::uint64_t at = now_ns();
    std::size_t f = 0, t = 0;
    d.mem_get_info(&f, &t);
    if (r != 0) {
      std::printf("failed at_ns %llu step %d mib %ld free_mib %ld cuda_error %d\n",
                  static_cast<unsigned long long>(at), k, mib, static_cast<long>(f / kMiB), r);
      std::fflush(stdout);
      return 3;
    }
    // Touch it, as a program that uses its memory would.
    d.memset(p, static_cast<unsigned char>(k), static_cast<std::size_t>(mib) * kMiB);
    d.ctx_synchronize();
    held.push_back(p);
    held_mib += mib;
    if (!others_freed && f >= expected_free - static_cast<std::size_t>(mib) * kMiB + 16 * kMiB) {
      others_freed = true;
      std::printf("freed_by_others at_ns %llu mib %ld\n", static_cast<unsigned long long>(at),
                  static_cast<long>((f + static_cast<std::size_t>(mib) * kMiB - expected_free) / kMiB));
    }
    expected_free = f;
    std::printf("step %d at_ns %llu mib %ld free_mib %ld\n", k, static_cast<unsigned long long>(at), mib,
                static_cast<long>(f / kMiB));
    std::fflush(stdout);
    if (held_mib < target_mib) watch(at + static_cast<std::uint64_t>(interval_ms) * 1'000'000ULL);
  }
  std::printf("reached at_ns %llu held_mib %ld\n", static_cast<unsigned long long>(now_ns()), held_mib);
  std::fflush(stdout);
  watch(now_ns() + static_cast<std::uint64_t>(hold_ms) * 1'000'000ULL);
  for (CUdeviceptr p : held) d.mem_free(p);
  return 0;
}
