// The NVML reader against the real driver (label gpu): the figures are
// sane, and a process that allocates VRAM (a child with its own CUDA
// context, through the driver API loaded at run time: no CUDA toolkit
// needed) shows up as foreign with its memory, and as the tier's own when
// its pid is excluded. Skips where there is no NVIDIA driver.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "backends/gpu/nvml.hpp"

namespace tierswap::gpu {
namespace {

using namespace std::chrono;

constexpr std::uint64_t kChildBytes = 1ULL << 30;

TEST(NvmlReal, ReadsTheCards) {
  const auto t0 = steady_clock::now();
  auto n = Nvml::load();
  if (!n) GTEST_SKIP() << n.error().message;
  const auto load_us = duration_cast<microseconds>(steady_clock::now() - t0).count();
  auto gpus = (*n)->read_all({});
  ASSERT_TRUE(gpus) << gpus.error().message;
  ASSERT_GE(gpus->size(), 1u);
  for (const auto& g : *gpus) {
    std::printf("%s\n", describe(g).c_str());
    EXPECT_GT(g.total_bytes, 0u);
    EXPECT_LE(g.free_bytes, g.total_bytes);
    EXPECT_LE(g.used_bytes, g.total_bytes);
    EXPECT_TRUE(g.uuid.starts_with("GPU-")) << g.uuid;
    EXPECT_FALSE(g.name.empty());
    EXPECT_TRUE(g.processes_known);
    for (const auto& e : g.errors) ADD_FAILURE() << e;
  }
  // What one poll of every GPU costs (the daemon does one per tick).
  constexpr int kPolls = 50;
  const auto t1 = steady_clock::now();
  for (int i = 0; i < kPolls; ++i) ASSERT_TRUE((*n)->read_all({}));
  const auto per_poll_us = duration_cast<microseconds>(steady_clock::now() - t1).count() / kPolls;
  std::printf("nvml: load+init %lld us; read_all of %zu GPU(s) %lld us per poll (v3 process calls: %s)\n",
              static_cast<long long>(load_us), gpus->size(), static_cast<long long>(per_poll_us),
              (*n)->has_processes_v3() ? "yes" : "no");
  RecordProperty("nvml_init_us", std::to_string(load_us));
  RecordProperty("nvml_poll_us", std::to_string(per_poll_us));
}

// Child: a CUDA context on GPU 0 and kChildBytes allocated, then "1" on
// `ready` and sleep until killed.
[[noreturn]] void hold_vram(int ready) {
  using CUresult = int;
  void* h = dlopen("libcuda.so.1", RTLD_NOW);
  if (!h) _exit(2);
  auto init = reinterpret_cast<CUresult (*)(unsigned)>(dlsym(h, "cuInit"));
  auto get = reinterpret_cast<CUresult (*)(int*, int)>(dlsym(h, "cuDeviceGet"));
  auto create = reinterpret_cast<CUresult (*)(void**, unsigned, int)>(dlsym(h, "cuCtxCreate_v2"));
  auto alloc = reinterpret_cast<CUresult (*)(unsigned long long*, std::size_t)>(dlsym(h, "cuMemAlloc_v2"));
  int dev = 0;
  void* ctx = nullptr;
  unsigned long long ptr = 0;
  if (!init || !get || !create || !alloc || init(0) || get(&dev, 0) || create(&ctx, 0, dev) ||
      alloc(&ptr, kChildBytes))
    _exit(3);
  if (write(ready, "1", 1) != 1) _exit(4);
  for (;;) pause();
}

const GpuProcess* find(const std::vector<GpuProcess>& v, pid_t pid) {
  for (const auto& p : v)
    if (p.pid == pid) return &p;
  return nullptr;
}

TEST(NvmlReal, ForeignProcessSeenAndExcluded) {
  if (void* h = dlopen("libcuda.so.1", RTLD_NOW)) {
    dlclose(h);
  } else {
    GTEST_SKIP() << "no libcuda.so.1: no NVIDIA driver here";
  }
  GpuSignals signals;
  auto before = signals.poll({});
  if (!before.available) GTEST_SKIP() << before.unavailable_reason;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    hold_vram(fds[1]);
  }
  close(fds[1]);
  char c = 0;
  const bool ready = read(fds[0], &c, 1) == 1;
  close(fds[0]);
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reap{child};
  ASSERT_TRUE(ready) << "the child could not allocate VRAM";

  // NVML lists the process from the next poll on.
  const GpuProcess* seen = nullptr;
  GpuPoll p;
  const auto t0 = steady_clock::now();
  while (steady_clock::now() - t0 < seconds(10)) {
    p = signals.poll({});
    ASSERT_TRUE(p.available) << p.unavailable_reason;
    if ((seen = find(p.gpus[0].foreign, child))) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  std::string listed;
  for (const auto& f : p.gpus[0].foreign)
    listed += " " + std::to_string(f.pid) + ":" + std::to_string(f.used_bytes.value_or(0));
  ASSERT_NE(seen, nullptr) << "child " << child << " not among the foreign processes:" << listed;
  ASSERT_TRUE(seen->used_bytes.has_value());
  EXPECT_GE(*seen->used_bytes, kChildBytes);
  EXPECT_TRUE(seen->compute);
  EXPECT_GE(p.gpus[0].foreign_bytes, kChildBytes);
  std::printf("child %d seen after %lld ms: %s\n", child,
              static_cast<long long>(duration_cast<milliseconds>(steady_clock::now() - t0).count()),
              describe(p.gpus[0]).c_str());

  // Excluded (as the daemon excludes tierswap-nbd): the tier's own.
  const pid_t exclude[] = {child};
  auto q = signals.poll(exclude);
  ASSERT_TRUE(q.available);
  EXPECT_EQ(find(q.gpus[0].foreign, child), nullptr);
  ASSERT_NE(find(q.gpus[0].own, child), nullptr);
  EXPECT_GE(q.gpus[0].own_bytes, kChildBytes);
  // Nothing else changed on a quiet machine: the child's bytes moved from one sum to the other.
  EXPECT_EQ(q.gpus[0].foreign_bytes + *seen->used_bytes, p.gpus[0].foreign_bytes);
}

}  // namespace
}  // namespace tierswap::gpu
