// Store-level microbenchmark of CudaStore: submit() batches of N scattered
// 4 KiB pages and 1 MiB requests through each path, against a plain
// cudaMemcpyAsync + sync of one page. Prints µs per batch (p50, p99) and GB/s.
//
//   tierswap-gpu-bench [--size BYTES] [--seconds S]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backends/vram/cuda_store.hpp"

using namespace tierswap::vram;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  double p50_us = 0, p99_us = 0, gbps = 0;
};

Stats summarize(std::vector<double>& us, double bytes_per_op) {
  std::sort(us.begin(), us.end());
  Stats s;
  s.p50_us = us[us.size() / 2];
  s.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  s.gbps = bytes_per_op / (s.p50_us * 1e3);
  return s;
}

void row(const char* path, const char* what, int n, std::uint32_t len, const Stats& s) {
  std::printf("%-8s %-6s %5d x %7u  p50 %8.1f us  p99 %8.1f us  %7.2f GB/s\n", path, what, n, len, s.p50_us,
              s.p99_us, s.gbps);
  std::fflush(stdout);
}

// Times `iters` submits of n requests of len bytes at random aligned offsets.
Stats time_batches(BlockStore& s, std::byte* buf, Op op, int n, std::uint32_t len, int iters,
                   std::mt19937_64& rng) {
  std::vector<IoRequest> batch(n);
  std::vector<double> us;
  us.reserve(iters);
  const std::uint64_t slots = s.size() / len;
  for (int it = -iters / 10 - 5; it < iters; ++it) {
    for (int i = 0; i < n; ++i) {
      batch[i] = {op, (rng() % slots) * len, len, buf + std::size_t(i) * len, 0};
    }
    const auto t0 = Clock::now();
    s.submit(batch);
    const auto t1 = Clock::now();
    for (const auto& r : batch) {
      if (r.error) {
        std::fprintf(stderr, "error %d\n", r.error);
        std::exit(1);
      }
    }
    if (it >= 0) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  return summarize(us, double(n) * len);
}

// `threads` submitters, each a batch of `qd` 4 KiB pages (70% reads), for
// `seconds`: aggregate IOPS and p99 of one batch.
void concurrent(BlockStore& s, const char* path, int threads, int qd, double seconds) {
  std::vector<std::byte*> bufs;
  for (int t = 0; t < threads; ++t) bufs.push_back(s.allocate_buffer(std::size_t(qd) * 4096));
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(threads);
  std::vector<std::thread> th;
  for (int t = 0; t < threads; ++t) {
    th.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      std::vector<IoRequest> batch(qd);
      lat[t].reserve(1 << 20);
      const std::uint64_t slots = s.size() / 4096;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < qd; ++i) {
          batch[i] = {rng() % 10 < 7 ? Op::read : Op::write, (rng() % slots) * 4096, 4096,
                      bufs[t] + std::size_t(i) * 4096, 0};
        }
        const auto t0 = Clock::now();
        s.submit(batch);
        lat[t].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& x : th) x.join();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  const double iops = double(all.size()) * qd / seconds;
  std::printf("%-8s mix70  %2dthr x QD%-3d      %9.0f IOPS  batch p50 %7.1f us  p99 %7.1f us\n", path,
              threads, qd, iops, all[all.size() / 2], all[all.size() * 99 / 100]);
  std::fflush(stdout);
  for (int t = 0; t < threads; ++t) s.free_buffer(bufs[t], std::size_t(qd) * 4096);
}

void raw_memcpy(std::size_t len, int iters) {
  void *h = nullptr, *d = nullptr;
  cudaStream_t st;
  cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
  cudaHostAlloc(&h, len, cudaHostAllocMapped);
  cudaMalloc(&d, 64 << 20);
  for (int dir = 0; dir < 2; ++dir) {
    std::vector<double> us;
    for (int it = -50; it < iters; ++it) {
      const auto t0 = Clock::now();
      if (dir == 0)
        cudaMemcpyAsync(h, d, len, cudaMemcpyDeviceToHost, st);
      else
        cudaMemcpyAsync(d, h, len, cudaMemcpyHostToDevice, st);
      cudaStreamSynchronize(st);
      if (it >= 0) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    row("memcpy", dir == 0 ? "read" : "write", 1, std::uint32_t(len), summarize(us, double(len)));
  }
  cudaFree(d);
  cudaFreeHost(h);
  cudaStreamDestroy(st);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t size = 8ull << 30;
  double seconds = 1.5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--size")) size = std::strtoull(argv[i + 1], nullptr, 0);
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
  }
  struct Path {
    const char* name;
    CudaStoreTuning t;
  };
  const Path paths[] = {
      {"poller", {}},
      {"kernel", {.poller = false}},
      {"memcpy", {.copy_min_bytes = 512, .poller = false}},
  };
  std::mt19937_64 rng(1);
  bool first = true;
  for (const Path& p : paths) {
    std::string report;
    auto made = make_cuda_store(CudaStoreOptions{size, ""}, p.t, report);
    if (!made) {
      std::fprintf(stderr, "%s\n", made.error().message.c_str());
      return 2;
    }
    if (first) std::printf("%s\n", report.c_str());
    first = false;
    BlockStore& s = **made;
    std::byte* buf = s.allocate_buffer(256 * 4096 + (8 << 20));
    const bool memcpy_path = std::string(p.name) == "memcpy";
    for (Op op : {Op::read, Op::write}) {
      for (int n : {1, 8, 32, 128, 256}) {
        if (memcpy_path && n > 32) continue;
        const int iters = n <= 32 ? 4000 : 1000;
        row(p.name, op == Op::read ? "read" : "write", n, 4096,
            time_batches(s, buf, op, n, 4096, iters, rng));
      }
      if (std::string(p.name) != "poller") {
        row(p.name, op == Op::read ? "read" : "write", 1, 1 << 20,
            time_batches(s, buf, op, 1, 1 << 20, 500, rng));
        row(p.name, op == Op::read ? "read" : "write", 8, 1 << 20,
            time_batches(s, buf, op, 8, 1 << 20, 200, rng));
      }
    }
    concurrent(s, p.name, 1, 1, seconds);
    concurrent(s, p.name, 8, 1, seconds);
    concurrent(s, p.name, 8, 32, seconds);
    concurrent(s, p.name, 1, 256, seconds);
    const CudaStoreCounters c = cuda_store_counters(s);
    std::printf("%-8s counters: poller %llu (starts %llu) launches %llu copies %llu\n", p.name,
                (unsigned long long)c.poller_batches, (unsigned long long)c.poller_starts,
                (unsigned long long)c.kernel_launches, (unsigned long long)c.copies);
    s.free_buffer(buf, 256 * 4096 + (8 << 20));
  }
  raw_memcpy(4096, 4000);
  return 0;
}
