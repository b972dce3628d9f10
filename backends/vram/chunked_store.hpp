// ChunkedStore: a BlockStore whose export is allocated in chunks that can be
// given back one by one (so that an evacuated VRAM tier frees its memory
// while the export keeps its size).
//
// Contract, beyond BlockStore's:
// - The export is cut into chunk_count() chunks of chunk_bytes() bytes, the
//   last one shorter when size() is not a multiple (chunk_length()).
//   chunk_bytes() is a multiple of 4096.
// - release_chunk(i) gives chunk i's memory back; until restore_chunk(i)
//   succeeds the caller must not touch [chunk_offset(i), + chunk_length(i))
//   through read/write/zero/trim/submit (CudaStore: an access there would
//   fault the GPU context). MigratingStore is the caller that guarantees it.
// - restore_chunk(i) allocates the chunk again; its contents are unspecified
//   until written. ENOMEM when the memory is not there (nothing changed).
// - release/restore of one chunk are not concurrent with I/O to that chunk;
//   they may run concurrently with I/O to other chunks.
#pragma once

#include <cstdint>

#include "backends/vram/block_store.hpp"
#include "common/result.hpp"

namespace tierswap::vram {

inline constexpr std::uint64_t kDefaultChunkBytes = 64ULL << 20;

class ChunkedStore : public BlockStore {
 public:
  [[nodiscard]] virtual std::uint64_t chunk_bytes() const = 0;
  [[nodiscard]] std::uint32_t chunk_count() const {
    return static_cast<std::uint32_t>((size() + chunk_bytes() - 1) / chunk_bytes());
  }
  [[nodiscard]] std::uint64_t chunk_offset(std::uint32_t i) const { return i * chunk_bytes(); }
  [[nodiscard]] std::uint64_t chunk_length(std::uint32_t i) const {
    const std::uint64_t off = chunk_offset(i);
    return size() - off < chunk_bytes() ? size() - off : chunk_bytes();
  }
  [[nodiscard]] virtual bool chunk_resident(std::uint32_t i) const = 0;
  virtual Result<void> release_chunk(std::uint32_t i) = 0;
  virtual Result<void> restore_chunk(std::uint32_t i) = 0;
  // Bytes of memory held now (resident chunks, rounded as allocated).
  [[nodiscard]] virtual std::uint64_t resident_bytes() const = 0;
};

}  // namespace tierswap::vram
