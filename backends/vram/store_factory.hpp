// Picks the BlockStore behind the export by name (--store).
//   host        RAM (HostStore)
//   host-batch  RAM, but served through the cross-connection batching path
//               that CudaStore uses (tests)
//   cuda        GPU memory (CudaStore; only when built with CUDA)
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backends/vram/block_store.hpp"
#include "common/result.hpp"

namespace tierswap::vram {

struct StoreOptions {
  std::string kind = "host";
  std::uint64_t size = 0;
  std::string device;                       // cuda: "" first GPU, index or UUID
  bool lock = true;                         // host: mlock the export
  std::uint64_t chunk_bytes = 64ULL << 20;  // allocation unit (ChunkedStore)
};

// `report` receives a line for a person (e.g. how much VRAM was obtained).
Result<std::unique_ptr<BlockStore>> make_store(const StoreOptions& options, std::string& report);

// Whether this build has CudaStore ("cuda=yes" in --version).
bool have_cuda_store();

}  // namespace tierswap::vram
