// CudaStore: a BlockStore in GPU memory (the VRAM tier's storage).
//
// Data path (all buffers and streams are made in make_cuda_store()):
// - Payload buffers come from allocate_buffer(): pinned host memory mapped
//   into the GPU's address space, so kernels read and write them directly.
// - A small batch (at most 16 requests and poller_max_bytes, 64 KiB by
//   default) goes to a persistent polling kernel: one block that polls a
//   mailbox in mapped memory (one PCIe round trip a round, see Mailbox), moves the data and signals
//   completion. It answers in a few microseconds where a launch costs ten; it exits after poller_idle_us
//   without work (so an idle tier holds no SM and leaves nvidia-smi's utilisation alone) and is started again
//   by the next request.
// - Any other batch takes a lane (stream + pinned descriptor array; several
//   lanes so that threads submit concurrently): requests are cut into
//   segments of at most 16 KiB, moved by one gather/scatter launch (16-byte
//   vectors, one block per segment); a request of copy_min_bytes or more
//   goes through cudaMemcpyAsync (the copy engines), a zero of
//   zero_kernel_min_bytes or more through a fill kernel. One stream sync.
// - Host pointers that did not come from allocate_buffer() work, but through
//   cudaMemcpyAsync on pageable memory (slow).
// - trim zeroes the range (reads after a trim return zeros; the NBD spec
//   allows any content, zeros leak nothing). flush returns at once: submit()
//   has waited for the GPU before it returned, so data is in VRAM.
//
// - Chunks (chunked_store.hpp): the export is one reserved virtual address
//   range with each chunk's physical memory created and mapped into it on
//   its own (CUDA virtual memory management: cuMemCreate/cuMemMap, reached
//   through cudaGetDriverEntryPointByVersion, so the static runtime still
//   starts without libcuda), so the kernels keep one base pointer and
//   release_chunk() unmaps a chunk and frees its VRAM. Both stop the
//   polling kernel first (it restarts with the next request). Where the
//   driver lacks VMM, one cudaMalloc holds the export as one chunk that
//   cannot be released (ENOTSUP, said in the report).
//
// Errors: any CUDA failure (launch, copy, sync, kernel fault) marks the store
// failed(): that batch and every later call get EIO, never wrong data.
// Thread-safety: every BlockStore call may come from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backends/vram/chunked_store.hpp"
#include "common/result.hpp"

namespace tierswap::vram {

struct CudaStoreOptions {
  std::uint64_t size = 0;  // bytes; rounded down to a multiple of 512
  std::string device;      // "" first GPU, index "0" or UUID "GPU-..." (a prefix will do)
  // Allocation unit (rounded up to the GPU's granularity, 2 MiB on H100/H200).
  std::uint64_t chunk_bytes = 64ULL << 20;
};

// Knobs for tests and benchmarks; the defaults are what was measured best.
struct CudaStoreTuning {
  unsigned lanes = 8;                                 // concurrent submitters
  std::uint32_t copy_min_bytes = 512 * 1024;          // request -> cudaMemcpyAsync
  std::uint64_t zero_kernel_min_bytes = 1024 * 1024;  // zero/trim -> fill kernel
  bool poller = true;                                 // persistent polling kernel
  std::uint32_t poller_max_bytes = 64 * 1024;         // batch size it takes
  std::uint32_t poller_idle_us = 10000;               // it exits after this idle
  bool spin_wait = true;  // spin on completion (else yield); first store in a process sets it
  // What prefers_batching() answers. false: measured end to end on the H200
  // (bench/results/nbd-gpu.md), tierswap-nbd's cross-connection batcher costs
  // two thread hand-offs per batch, more than it gains: each connection's
  // group of requests already is a batch, and the lanes and the poller take
  // concurrent submits (QD1 4 KiB read p50 22 us inline against 36 us via
  // the batcher; 8x32 4 KiB 1.68M IOPS against 1.42M).
  bool prefer_batching = false;
};

// Allocates device memory chunk by chunk (when the GPU is short, the export
// is the chunks it got, if that is at least 1/8 of `size`; `report` says how
// much it got and why).
// Errors: ENODEV (no driver, no device, no such device), ENOMEM (not even
// 1/8 of size), EIO (other CUDA failures), EINVAL (size below 512).
// This form takes the default tuning, overridden by the environment variable
// TIERSWAP_CUDA_TUNING for benchmarks ("batching=0,poller=1,poller_max=65536,
// poller_idle_us=10000,lanes=4,copy_min=524288,spin=1"); the report names
// any override.
Result<std::unique_ptr<ChunkedStore>> make_cuda_store(const CudaStoreOptions& options, std::string& report);
Result<std::unique_ptr<ChunkedStore>> make_cuda_store(const CudaStoreOptions& options,
                                                    const CudaStoreTuning& tuning, std::string& report);

// Test hooks. `store` must come from make_cuda_store().
enum class CudaFault {
  none,
  bad_launch,   // next kernel launch fails (invalid configuration; not sticky)
  bad_address,  // next kernel touches an unmapped address (sticky: kills the context)
};
void cuda_store_inject(BlockStore& store, CudaFault fault);

struct CudaStoreCounters {
  std::uint64_t poller_batches = 0;   // batches the polling kernel served
  std::uint64_t poller_starts = 0;    // times it was (re)launched
  std::uint64_t kernel_launches = 0;  // gather/scatter and fill launches
  std::uint64_t copies = 0;           // cudaMemcpyAsync requests
  std::uint64_t pageable = 0;         // requests whose buffer was not from allocate_buffer()
};
CudaStoreCounters cuda_store_counters(const BlockStore& store);

}  // namespace tierswap::vram
