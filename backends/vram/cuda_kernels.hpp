// The CUDA side of CudaStore: descriptor layouts shared by host and device and
// a small C-style launcher API. This header is compiled both by nvcc (C++17,
// which does not take C++23) and by g++ -std=c++23: keep it C++17-clean and
// free of tierswap headers.
//
// Addresses in descriptors are device-visible: `dev_off` is a byte offset into
// the store's VRAM allocation, `host` is the device pointer of mapped pinned
// host memory (cudaHostAlloc(..., cudaHostAllocMapped | cudaHostAllocPortable);
// with unified addressing it equals the host pointer).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tierswap::vram::cuda {

// What a segment does.
enum SegOp : std::uint32_t {
  kSegRead = 0,   // VRAM -> host
  kSegWrite = 1,  // host -> VRAM
  kSegZero = 2,   // zeros -> VRAM (host unused)
};

// One contiguous piece of a request. Lengths are multiples of 512 bytes.
// A launched gather/scatter kernel gives each segment to one block, so the
// host splits requests into segments of at most kMaxSegBytes.
struct Seg {
  std::uint64_t dev_off;
  std::uint64_t host;  // device-visible address; 0 for kSegZero
  std::uint32_t len;
  std::uint32_t op;  // SegOp
  std::uint64_t pad;
};
static_assert(sizeof(Seg) == 32, "Seg is read as four 8-byte words");

inline constexpr std::uint32_t kMaxSegBytes = 16 * 1024;
inline constexpr unsigned kGatherThreads = 256;

// Segments passed by value in the kernel's parameter space (no descriptor
// read across PCIe before the data moves): used for small batches.
inline constexpr unsigned kInlineSegs = 32;
struct InlineSegs {
  Seg seg[kInlineSegs];
};

// Mailbox of the persistent polling kernel, in mapped pinned host memory.
// The host writes the segments, then `bell` = count << 32 | seq with one
// 8-byte store (count kBellStop: exit). Each 8-byte segment word carries seq
// in its upper half (like NCCL's LL protocol; aligned 8-byte stores and
// loads are atomic), so the poller reads the bell and the first segments in
// one PCIe round trip and trusts a word only when its tag is the bell's seq.
// It moves the data, fences to system scope and writes done = seq. When it
// has seen no new bell for idle_ns it writes exited = 1 and returns: a bell
// it never saw was not served.
inline constexpr unsigned kPollerSegs = 16;
inline constexpr unsigned kPollerThreads = 512;
inline constexpr std::uint32_t kBellStop = 0xFFFFFFFFu;
// Word layout (low 32 bits; the high 32 are the tag):
//   w[0] dev_off >> 9, w[1] host low 32, w[2] host high 32, w[3] op << 24 | len >> 9
struct PollSeg {
  std::uint64_t w[4];
};
inline constexpr std::uint64_t kPollerMaxDev = 1ull << 41;         // dev_off >> 9 fits 32 bits
inline constexpr std::uint64_t kPollerMaxLen = (1ull << 24) << 9;  // len >> 9 fits 24 bits
struct alignas(128) Mailbox {
  // host -> GPU
  volatile std::uint64_t bell;
  std::uint64_t pad0[15];
  volatile PollSeg seg[kPollerSegs];
  // GPU -> host, on its own lines
  alignas(128) volatile std::uint32_t done;
  volatile std::uint32_t exited;
  std::uint32_t pad1[30];
};

// Test hook: what the next launch should break (see CudaStore::inject()).
enum Inject : int {
  kInjectNone = 0,
  kInjectBadLaunch = 1,   // invalid launch configuration: non-sticky error
  kInjectBadAddress = 2,  // kernel touches an unmapped address: sticky error
};

// Launchers. Each returns the launch's error (cudaGetLastError right after
// the launch); completion and execution errors show at the stream's sync.
// `vram` is the base of the store's device allocation.
cudaError_t launch_gather_inline(const InlineSegs& segs, unsigned count, char* vram, cudaStream_t stream,
                                 int inject);
cudaError_t launch_gather_mapped(const Seg* segs_dev, unsigned count, char* vram, cudaStream_t stream,
                                 int inject);
// Fills [dst, dst + len) with zeros (len a multiple of 16). A kernel rather
// than cudaMemsetAsync, which may wait for the running poller.
cudaError_t launch_zero(char* dst, std::uint64_t len, cudaStream_t stream, int inject);
cudaError_t launch_poller(Mailbox* mailbox_dev, char* vram, std::uint32_t start_seq, std::uint64_t idle_ns,
                          cudaStream_t stream);

}  // namespace tierswap::vram::cuda
